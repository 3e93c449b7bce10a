"""The gated recurrent unit of Cho et al. (2014), section 2.3, written out once in :func:`gru_step`.

With x the input, h the previous state and σ the logistic sigmoid::

    r  = σ(W_r x + U_r h)                  reset gate (eq. 5)
    z  = σ(W_z x + U_z h)                  update gate (eq. 6)
    h~ = tanh(W x + U (r ⊙ h))             candidate (eq. 8)
    h' = (1 − z) ⊙ h + z ⊙ h~              new state (the lecture's form of eq. 7)

Each term also has a bias. ``reset_after=False`` is this candidate; ``reset_after=True`` is the cuDNN and
``torch.nn.GRU`` form ``h~ = tanh(W x + r ⊙ (U h + b))``, which applies r after the recurrent product.

z is the share of the candidate written into the state, as in the lecture: z near 0 keeps the memory.
The paper's eq. 7 names the other share z (``h' = z h + (1 − z) h~``), and so does ``torch.nn.GRU``, whose stored
update row gives a *keep* gate u. The parameters here are stored exactly as torch stores them (so a state dict
moves between :class:`EquationsGRU` and ``torch.nn.GRU`` unchanged), and the code reads the lecture's z from
them as ``z = 1 − u = σ(−a_u)``, a_u being the pre-activation of the stored update row.

Storage (torch's names and layout): ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh``
(3H), row blocks ``[reset; update; candidate]``. Letters: B batch, T time, I input, H hidden, D directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.model.unroll import EquationsRNN, uniform_

__all__ = ["GRUCell", "EquationsGRU", "gru_step"]


def gru_step(xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor, *, reset_after: bool
             ) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the equations above.

    :param xw: the input terms of all three blocks, ``weight_ih x + bias_ih`` (B, 3H), computed by the caller
        (for a whole sequence at once when the inputs are known in advance).
    :param h: the previous state (B, H). :param weight_hh: (3H, H). :param bias_hh: (3H,).
    :return: the new state h', the reset gate r and the update gate z, each (B, H).
    """
    n = h.shape[-1]
    x_r, x_u, x_n = xw.split(n, dim=-1)
    if reset_after:  # one recurrent product for the three blocks
        h_r, h_u, h_n = F.linear(h, weight_hh, bias_hh).split(n, dim=-1)
    else:
        h_r, h_u = F.linear(h, weight_hh[: 2 * n], bias_hh[: 2 * n]).split(n, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(-(x_u + h_u))  # the lecture's z: 1 − torch's keep gate
    if reset_after:
        h_tilde = torch.tanh(x_n + r * h_n)
    else:
        h_tilde = torch.tanh(x_n + F.linear(r * h, weight_hh[2 * n :], bias_hh[2 * n :]))
    return (1 - z) * h + z * h_tilde, r, z


class GRUCell(nn.Module):
    """One GRU step ``h' = cell(x, h)`` by :func:`gru_step`, with ``torch.nn.GRUCell``'s parameters.

    :param input_size: I. :param hidden_size: H. :param reset_after: the candidate's form (module docstring).
    """

    def __init__(self, input_size: int, hidden_size: int, *, reset_after: bool) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.reset_after = input_size, hidden_size, reset_after
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        uniform_(list(self.parameters()), hidden_size)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """The new state (B, H) from the input x (B, I) and the state h (B, H)."""
        xw = F.linear(x, self.weight_ih, self.bias_ih)
        return gru_step(xw, h, self.weight_hh, self.bias_hh, reset_after=self.reset_after)[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"


class EquationsGRU(EquationsRNN):
    """A single-layer, batch-first, uni- or bidirectional ``torch.nn.GRU`` computed step by step with
    :func:`gru_step`: the same parameter names (``weight_ih_l0`` ..., ``..._reverse``), so state dicts load
    both ways, and with ``reset_after=True`` the same results.

    :param input_size: I. :param hidden_size: H. :param bidirectional: D = 2.
    :param reset_after: the candidate's form (module docstring).
    """

    GATES = 3
    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, *, bidirectional: bool = False,
                 reset_after: bool = True) -> None:
        self.reset_after = reset_after
        super().__init__(input_size, hidden_size, bidirectional=bidirectional)

    def step(self, xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        return gru_step(xw, h, weight_hh, bias_hh, reset_after=self.reset_after)[0]

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"
