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

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


def _uniform_(params: list[nn.Parameter], hidden_size: int) -> None:
    """torch's GRU initialisation: U(−1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


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
        _uniform_(list(self.parameters()), hidden_size)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """The new state (B, H) from the input x (B, I) and the state h (B, H)."""
        xw = F.linear(x, self.weight_ih, self.bias_ih)
        return gru_step(xw, h, self.weight_hh, self.bias_hh, reset_after=self.reset_after)[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"


class EquationsGRU(nn.Module):
    """A single-layer, batch-first, uni- or bidirectional ``torch.nn.GRU`` computed step by step with
    :func:`gru_step`: the same parameter names (``weight_ih_l0`` ..., ``..._reverse``), so state dicts load
    both ways, and with ``reset_after=True`` the same results.

    :param input_size: I. :param hidden_size: H. :param bidirectional: D = 2.
    :param reset_after: the candidate's form (module docstring).
    """

    def __init__(self, input_size: int, hidden_size: int, *, bidirectional: bool = False,
                 reset_after: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bidirectional, self.reset_after = bidirectional, reset_after
        self.num_directions = 2 if bidirectional else 1
        for suffix in self._suffixes():
            self.register_parameter(f"weight_ih_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size, input_size)))
            self.register_parameter(f"weight_hh_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size)))
            self.register_parameter(f"bias_hh_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size)))
        _uniform_(list(self.parameters()), hidden_size)

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"][: self.num_directions]

    def direction(self, suffix: str = "") -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of the forward (``""``) or ``"_reverse"`` direction."""
        return tuple(getattr(self, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _run_direction(self, x: Tensor, h: Tensor, lengths: Tensor, suffix: str) -> tuple[Tensor, Tensor]:
        """One direction over a padded batch x (B, T, I) from h (B, H): outputs (B, T, H) and the last state.

        Padded steps (t >= length) keep the state and output zeros, so the reverse direction, walking
        t = T−1 … 0, starts each row at its own last real token.
        """
        w_ih, w_hh, b_ih, b_hh = self.direction(suffix)
        xw = F.linear(x, w_ih, b_ih)  # (B, T, 3H): the input terms of every step in one product
        steps = range(x.shape[1] - 1, -1, -1) if suffix else range(x.shape[1])
        outputs: list[Tensor] = []
        for t in steps:
            h_new = gru_step(xw[:, t], h, w_hh, b_hh, reset_after=self.reset_after)[0]
            real = (t < lengths).unsqueeze(-1).to(h.dtype)  # (B, 1)
            h = real * h_new + (1 - real) * h
            outputs.append(real * h_new)
        if suffix:
            outputs.reverse()
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, self.hidden_size)
        return out, h

    def forward(self, x: Tensor, h0: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``torch.nn.GRU(batch_first=True)`` over ``pack_padded_sequence(x, lengths, enforce_sorted=False)``.

        :param x: (B, T, I). :param h0: (D, B, H), zeros when None. :param lengths: (B,), all T when None.
        :return: outputs (B, T, D*H), zeros on padding (forward half first), and the last states (D, B, H)
            (the reverse direction's after step 0).
        """
        batch, time = x.shape[:2]
        if h0 is None:
            h0 = x.new_zeros(self.num_directions, batch, self.hidden_size)
        lengths = torch.full((batch,), time) if lengths is None else lengths
        self._check_shapes(x, h0, lengths)
        lengths = lengths.to(device=x.device, dtype=torch.long)
        runs = [self._run_direction(x, h0[d], lengths, suffix) for d, suffix in enumerate(self._suffixes())]
        return torch.cat([out for out, _ in runs], dim=-1), torch.stack([h for _, h in runs])

    def _check_shapes(self, x: Tensor, h0: Tensor, lengths: Tensor) -> None:
        batch = x.shape[0]
        for name, got, want in (("x", x.shape, (batch, x.shape[1], self.input_size) if x.dim() == 3 else None),
                                ("h0", h0.shape, (self.num_directions, batch, self.hidden_size)),
                                ("lengths", lengths.shape, (batch,))):
            if want is None or tuple(got) != want:
                raise ValueError(f"expected {name} of shape {want or '(B, T, I)'}, got {tuple(got)}")

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, batch_first=True, bidirectional={self.bidirectional}, "
                f"reset_after={self.reset_after}")
