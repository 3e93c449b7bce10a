"""Where inference runs: the ``device`` setting of translate, evaluate, score, serve and the Python API."""

from __future__ import annotations

import torch

from nmt.choices import check_device
from nmt.errors import NMTError


def inference_device(setting: str = "auto") -> torch.device:
    """``auto`` (the first visible GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a GPU that is not there
    is one line naming what is visible."""
    name = check_device(setting)
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NMTError(f"device={name} but no CUDA GPU is visible (torch.cuda.is_available() is False): use "
                       "device=cpu or auto")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise NMTError(f"device={name} but only {torch.cuda.device_count()} GPU(s) are visible (cuda:0 to "
                       f"cuda:{torch.cuda.device_count() - 1})")
    return torch.device("cuda", index)
