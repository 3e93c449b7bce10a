"""Self-describing checkpoints, written atomically and loaded without running pickled code.

A checkpoint is a dict of plain values and tensors (``torch.load(weights_only=True)`` reads it):
``format``, ``model`` (state dict), ``model_info`` (config and vocabulary sizes), ``config`` (the resolved
run config), ``tokenizer`` (serialized sentencepiece models), and for ``last.pt`` the training state
(``train_state``, ``optimizer``, ``rng``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nmt.errors import NMTError

FORMAT = "nmt-checkpoint-1"


def save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` atomically: a temporary file in the same folder, fsync, then rename.

    A failure at any point leaves an existing ``path`` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise NMTError(f"cannot write checkpoint {path}: {err.strerror or err}; the previous one is kept") from None
        raise


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file, or the ``best.pt`` (else ``last.pt``) of a run directory."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise NMTError(f"no checkpoint (best.pt or last.pt) in run directory {path}")
    if not path.is_file():
        raise NMTError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged bytes surface as many types (IndexError, KeyError, zlib.error, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NMTError(f"corrupt or unsafe checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise NMTError(f"{path} is not an nmt checkpoint (format {FORMAT})")
    return ckpt


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The ``step-<N>.pt`` files of a run directory, oldest step first."""
    found = [(int(p.stem.split("-", 1)[1]), p) for p in Path(run_dir).glob("step-*.pt")
             if p.stem.split("-", 1)[1].isdigit()]
    return [p for _, p in sorted(found)]
