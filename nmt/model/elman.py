"""The Elman network (simple recurrent unit), the baseline the GRU lecture compares against:

    h' = tanh(W x + U h + b)

written out once in :func:`elman_step`, with ``torch.nn.RNNCell`` / ``torch.nn.RNN`` (tanh) parameters
(``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``, ``bias_hh``), so state dicts move between the fused and
the step-by-step layers. No gate decides what to keep: every step rewrites the whole state, and gradients through
many steps vanish or explode (the lecture's point). Letters: B batch, I input, H hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.model.unroll import EquationsRNN, uniform_


def elman_step(xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
    """The new state (B, H) from the input term ``xw`` = W x + b_ih (B, H) and the state h (B, H)."""
    return torch.tanh(xw + F.linear(h, weight_hh, bias_hh))


class ElmanCell(nn.Module):
    """One step ``h' = cell(x, h)`` by :func:`elman_step`, with ``torch.nn.RNNCell``'s parameters.

    :param input_size: I. :param hidden_size: H.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        uniform_(list(self.parameters()), hidden_size)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return elman_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)


class EquationsElman(EquationsRNN):
    """``torch.nn.RNN(nonlinearity="tanh", batch_first=True)`` computed step by step with :func:`elman_step`."""

    GATES = 1
    mode = "RNN_TANH"

    def step(self, xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        return elman_step(xw, h, weight_hh, bias_hh)
