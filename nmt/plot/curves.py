"""``nmt plot curves``: training and dev loss, perplexity and BLEU against updates, from metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from nmt.errors import NMTError
from nmt.plot.common import plt


def read_metrics(path: Path) -> dict[str, dict[str, list[float]]]:
    """``{"train": {"step": [...], "loss": [...], ...}, "dev": {...}}`` from a run's metrics file."""
    if not path.is_file():
        raise NMTError(f"metrics file not found: {path}")
    out: dict[str, dict[str, list[float]]] = {"train": {}, "dev": {}}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise NMTError(f"{path}:{n}: not a JSON line") from None
            series = out.setdefault(row.get("kind", "train"), {})
            for key, value in row.items():
                if isinstance(value, (int, float)):
                    series.setdefault(key, []).append(value)
    if not out["train"] and not out["dev"]:
        raise NMTError(f"{path} holds no metrics yet")
    return out


def draw(metrics: dict[str, dict[str, list[float]]]) -> plt.Figure:
    """Three panels sharing the update axis: loss, perplexity (log scale) and dev BLEU."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, title in ((axes[0], "loss", "loss (nats per target piece)"), (axes[1], "ppl", "perplexity"),
                           (axes[2], "bleu", "dev BLEU (greedy)")):
        for kind, style in (("train", "-"), ("dev", "o-")):
            series = metrics.get(kind, {})
            if key in series:
                ax.plot(series["step"][: len(series[key])], series[key], style, label=kind, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    axes[1].set_yscale("log")
    return fig
