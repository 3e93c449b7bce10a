"""What the step-by-step recurrent layers share (:class:`EquationsRNN`): ``torch.nn.RNN``-style parameters per
direction, padding that keeps the state, and the walk over time in both directions. A subclass gives the number
of gate blocks and one step (nmt.model.gru for the GRU, nmt.model.elman for the Elman network).
Letters: B batch, T time, I input, H hidden, G gate blocks, D directions.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def uniform_(params: list[nn.Parameter], hidden_size: int) -> None:
    """torch's recurrent initialisation: U(−1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


class EquationsRNN(nn.Module):
    """A single-layer, batch-first, uni- or bidirectional recurrent layer with torch's parameter names
    (``weight_ih_l0`` (G·H, I), ``weight_hh_l0`` (G·H, H), ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``).

    :param input_size: I. :param hidden_size: H. :param bidirectional: D = 2.
    """

    GATES: ClassVar[int]  # G
    mode: ClassVar[str]  # as torch.nn.RNNBase.mode: "GRU", "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, *, bidirectional: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bidirectional = input_size, hidden_size, bidirectional
        self.num_directions = 2 if bidirectional else 1
        rows = self.GATES * hidden_size
        for suffix in self._suffixes():
            self.register_parameter(f"weight_ih_l0{suffix}", nn.Parameter(torch.empty(rows, input_size)))
            self.register_parameter(f"weight_hh_l0{suffix}", nn.Parameter(torch.empty(rows, hidden_size)))
            self.register_parameter(f"bias_ih_l0{suffix}", nn.Parameter(torch.empty(rows)))
            self.register_parameter(f"bias_hh_l0{suffix}", nn.Parameter(torch.empty(rows)))
        uniform_(list(self.parameters()), hidden_size)

    def step(self, xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        """The new state (B, H) from the input terms ``xw`` (B, G·H) and the state h (B, H)."""
        raise NotImplementedError

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
        xw = F.linear(x, w_ih, b_ih)  # (B, T, G·H): the input terms of every step in one product
        steps = range(x.shape[1] - 1, -1, -1) if suffix else range(x.shape[1])
        outputs: list[Tensor] = []
        for t in steps:
            h_new = self.step(xw[:, t], h, w_hh, b_hh)
            real = (t < lengths).unsqueeze(-1).to(h.dtype)  # (B, 1)
            h = real * h_new + (1 - real) * h
            outputs.append(real * h_new)
        if suffix:
            outputs.reverse()
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, self.hidden_size)
        return out, h

    def forward(self, x: Tensor, h0: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """As torch's layer over ``pack_padded_sequence(x, lengths, enforce_sorted=False)``.

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
        return f"{self.input_size}, {self.hidden_size}, batch_first=True, bidirectional={self.bidirectional}"
