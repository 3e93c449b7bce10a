"""``nmt average``: checkpoint averaging, the mean of the parameters of a run's last k step checkpoints."""

from __future__ import annotations

from pathlib import Path

from nmt import checkpoint
from nmt.config import AverageConfig
from nmt.data.load import refuse_overwrite, resolve_path
from nmt.errors import NMTError


def average_checkpoints(paths: list[Path]) -> dict:
    """A checkpoint like the newest of ``paths`` whose floating-point parameters are the mean over all of them.

    All must come from one model (same settings and tokenizer); otherwise the error names the odd file.
    """
    if not paths:
        raise NMTError("no checkpoints to average")
    first = checkpoint.read(paths[-1])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    for path in paths[:-1]:
        ck = checkpoint.read(path)
        if ck["model_info"] != first["model_info"] or ck["tokenizer"] != first["tokenizer"]:
            raise NMTError(f"{path} comes from another model or vocabulary than {paths[-1]}")
        for k, v in ck["model"].items():
            if v.is_floating_point():
                total[k] += v.double()
    model = {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    return {**{k: v for k, v in first.items() if k != "format"}, "model": model,
            "averaged": [str(p.name) for p in paths]}


def run_average(ac: AverageConfig) -> Path:
    run = resolve_path(ac.run)
    if not run.is_dir():
        raise NMTError(f"run directory not found: {run}")
    paths = checkpoint.step_checkpoints(run)[-ac.k:] if ac.k > 0 else []
    if not paths:
        raise NMTError(f"no step-<N>.pt checkpoints in {run} (train with train.keep_last > 0)")
    refuse_overwrite(ac.output, {f"run's {p.name}": str(p) for p in paths})
    out = resolve_path(ac.output) if ac.output else run / "averaged.pt"
    checkpoint.save(average_checkpoints(paths), out)
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {out}", flush=True)
    return out
