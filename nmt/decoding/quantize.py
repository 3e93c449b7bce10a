"""int8 dynamic quantization for CPU decoding: weights of the linear and GRU layers stored as int8, activations
quantized on the fly (``torch.ao.quantization.quantize_dynamic``). Embeddings stay fp32."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from nmt.choices import Quantize
from nmt.errors import NMTError


def quantize(model: nn.Module, mode: Quantize) -> nn.Module:
    """``model`` as it is for ``mode="none"``; for ``mode="int8"`` (CPU only) the same model with its linear and GRU
    layers swapped for int8 ones, in place, so that the fp32 weights are not held twice."""
    if Quantize.parse(mode, "quantize") == Quantize.none:
        return model
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise NMTError("quantize=int8 runs on the CPU only")
    with warnings.catch_warnings():  # torch.ao warns that its eager-mode API will move; it is still the supported route
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecat.*")
        layers = {nn.Linear, nn.GRU, nn.GRUCell, nn.LSTM, nn.LSTMCell, nn.RNNCell}  # torch has no int8 nn.RNN
        return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8,
                                                      inplace=True)
