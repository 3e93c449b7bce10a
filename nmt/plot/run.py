"""Dispatch ``nmt plot KIND`` to the module that computes and draws it."""

from __future__ import annotations

from pathlib import Path

from nmt.choices import PlotKind
from nmt.config import PlotConfig
from nmt.data.load import load_split, read_lines, refuse_overwrite, resolve_path
from nmt.decoding.translate import Translator, checkpoint_paths
from nmt.errors import NMTError
from nmt.plot import attention, curves, gates, gradients, representations
from nmt.plot.common import plt, save


def _run_dir(run: Path) -> Path:
    return run if run.is_dir() else run.parent


def _sentence(pc: PlotConfig) -> str:
    if not pc.sentence or not pc.sentence.strip():
        raise NMTError(f"nmt plot {pc.kind} needs a source sentence: sentence='...'")
    return pc.sentence


def _gradients(pc: PlotConfig) -> tuple[plt.Figure, Path]:
    """The gradient-by-distance picture of every run in ``pc.run``, on the first run's first dev sentences."""
    paths = [resolve_path(p) for p in checkpoint_paths(pc.run)]
    translators = [Translator.open(str(p), device="cpu") for p in paths]
    dev = load_split(translators[0].config.data, "dev")
    n = min(pc.max_phrases, len(dev))
    src, tgt = list(dev["src"][:n]), list(dev["tgt"][:n])
    curves = {f"{p.name if p.is_dir() else p.stem} ({t.config.model.cell_type})":
              gradients.gradient_by_distance(t, src, tgt) for p, t in zip(paths, translators, strict=True)}
    return gradients.draw(curves), _run_dir(paths[0]) / "plots" / "gradients.png"


def run_plot(pc: PlotConfig) -> Path:
    """Compute and write the picture ``pc.kind``; prints and returns its path."""
    refuse_overwrite(pc.output, {"run": pc.run, "input": pc.input})
    if pc.kind == PlotKind.gradients:
        fig, default = _gradients(pc)
        path = save(fig, resolve_path(pc.output) if pc.output else default)
        print(f"wrote {path}")
        return path
    run = resolve_path(pc.run)
    if not run.exists():
        raise NMTError(f"run not found: {run}")
    out = Path(pc.output).expanduser() if pc.output else _run_dir(run) / "plots" / f"{pc.kind}.png"
    if pc.kind == PlotKind.curves:
        metrics = run if run.suffix == ".jsonl" else _run_dir(run) / "metrics.jsonl"
        fig = curves.draw(curves.read_metrics(metrics))
    else:
        translator = Translator.open(pc.run, device="cpu")  # a checkpoint, a run or an ensemble [a,b]
        if pc.kind == PlotKind.attention:
            fig = attention.draw(*attention.attention_matrix(translator, _sentence(pc), pc.decode))
        elif pc.kind == PlotKind.gates:
            fig = gates.draw(*gates.encoder_gates(translator, _sentence(pc)), units=pc.units)
        else:
            if not pc.input:
                raise NMTError("nmt plot representations needs input=FILE with source phrases, one a line")
            phrases = [p for p in read_lines(resolve_path(pc.input)) if p.strip()][: pc.max_phrases]
            points, explained = representations.pca2(representations.summaries(translator, phrases))
            fig = representations.draw(points, explained, phrases, pc.labels)
    path = save(fig, out)
    print(f"wrote {path}")
    return path
