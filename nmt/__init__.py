"""nmt: the RNN Encoder-Decoder of Cho et al. (2014) for neural machine translation.

From Python (nmt.api)::

    import nmt
    model = nmt.load("runs/bible-es-en-small")          # a checkpoint, a run directory or a list (an ensemble)
    model.translate(["Dios es amor."], beam=5)
    result = nmt.train(nmt.compose("train.max_minutes=10"))

The names below are imported on first use, so ``import nmt`` (and the ``nmt`` command) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Aligned", "Model", "Runtime", "TrainResult", "Translation", "compose", "load", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nmt import api

        return getattr(api, name)
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
