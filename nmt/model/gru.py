"""Gated recurrent unit written out as the equations of Cho et al. (2014).

Shape legend used throughout: ``B`` batch, ``T`` time, ``I`` input features,
``H`` hidden units, ``D`` directions (1 or 2).

Two variants of the candidate state are supported and selected by
``reset_after``:

* **reset-before** (``reset_after=False``; Cho et al. 2014, §2.3, eqs. 5–8, as
  usually taught): the reset gate is applied to the previous state *before*
  the recurrent matrix::

      r  = σ(W_r x + b_ir + U_r h + b_hr)                  (eq. 5)
      z  = σ(W_z x + b_iz + U_z h + b_hz)                  (eq. 6)
      h̃  = tanh(W x + b_in + U (r ⊙ h) + b_hn)             (eq. 8)
      h' = (1 − z) ⊙ h + z ⊙ h̃                             (eq. 7, see below)

* **reset-after** (``reset_after=True``; the cuDNN / ``torch.nn.GRU`` form):
  the reset gate is applied *after* the recurrent matrix::

      h̃  = tanh(W x + b_in + r ⊙ (U h + b_hn))

Update-gate sign convention
---------------------------
Parameters are stored exactly as in :class:`torch.nn.GRU` /
:class:`torch.nn.GRUCell`: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H),
``bias_ih`` (3H), ``bias_hh`` (3H), row blocks ordered
``[reset r; update; candidate n]``.  The stored update row of ``torch.nn.GRU``
produces a *keep* gate ``u = σ(a_u)`` with ``h' = u ⊙ h + (1 − u) ⊙ h̃``
(which is also how Cho et al. 2014, eq. 7 writes it).  This module writes the
taught form ``h' = (1 − z) ⊙ h + z ⊙ h̃``, so its update gate is

    z = 1 − u = σ(−a_u),

where ``a_u`` is the pre-activation of the stored update row.  Both forms give
the same ``h'``, so a model can swap a fused ``torch.nn.GRU`` for
:class:`EquationsGRU` on the same ``state_dict``.  Gate activations returned
for visualisation are this ``z`` ("how much of the candidate is written"),
not torch's ``u``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["GRUCell", "EquationsGRU", "gru_step", "input_projection"]


def input_projection(x: Tensor, weight_ih: Tensor, bias_ih: Tensor) -> Tensor:
    """Project inputs for all three gate blocks at once (one matmul).

    Computes ``[W_r; W_z; W] x + [b_ir; b_iz; b_in]`` — the input terms of
    eqs. 5, 6 and 8.

    :param x: inputs, shape ``(..., I)`` (e.g. ``(B, I)`` or ``(B, T, I)``).
    :param weight_ih: input weights, shape ``(3H, I)``.
    :param bias_ih: input bias, shape ``(3H,)``.
    :return: projected inputs, shape ``(..., 3H)``.
    """
    return torch.nn.functional.linear(x, weight_ih, bias_ih)


def gru_step(
    xw: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor,
    *,
    reset_after: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One GRU step from a precomputed input projection.

    This is the single place where the GRU equations are written out.

    :param xw: input projection ``W_ih x + b_ih``, shape ``(B, 3H)``, blocks
        ``[r; update; n]`` (see :func:`input_projection`).
    :param h: previous hidden state, shape ``(B, H)``.
    :param weight_hh: recurrent weights ``[U_r; U_z; U]``, shape ``(3H, H)``.
    :param bias_hh: recurrent bias ``[b_hr; b_hz; b_hn]``, shape ``(3H,)``.
    :param reset_after: ``True`` for the cuDNN / ``torch.nn.GRU`` candidate
        ``tanh(W x + b_in + r ⊙ (U h + b_hn))``; ``False`` for the taught
        Cho et al. (2014) candidate ``tanh(W x + b_in + U (r ⊙ h) + b_hn)``.
    :return: ``(h_new, r, z)``, each of shape ``(B, H)``: the new state, the
        reset gate and the update gate ``z`` of ``h' = (1 − z) ⊙ h + z ⊙ h̃``.
    """
    hidden = h.shape[-1]
    x_r, x_u, x_n = xw.split(hidden, dim=-1)

    if reset_after:
        # One recurrent matmul for all three blocks: U_r h, U_z h, U h (+ b_h*).
        hw = torch.nn.functional.linear(h, weight_hh, bias_hh)
        h_r, h_u, h_n = hw.split(hidden, dim=-1)
    else:
        # Gates need U_r h, U_z h; the candidate needs U (r ⊙ h), computed below.
        hw = torch.nn.functional.linear(h, weight_hh[: 2 * hidden], bias_hh[: 2 * hidden])
        h_r, h_u = hw.split(hidden, dim=-1)

    # eq. 5: r = σ(W_r x + U_r h)
    r = torch.sigmoid(x_r + h_r)
    # eq. 6 (taught sign): z = σ(−a_u) = 1 − u, with u torch's "keep" gate.
    z = torch.sigmoid(-(x_u + h_u))

    if reset_after:
        # cuDNN form: h̃ = tanh(W x + b_in + r ⊙ (U h + b_hn))
        h_tilde = torch.tanh(x_n + r * h_n)
    else:
        # eq. 8: h̃ = tanh(W x + b_in + U (r ⊙ h) + b_hn)
        h_tilde = torch.tanh(
            x_n + torch.nn.functional.linear(r * h, weight_hh[2 * hidden :], bias_hh[2 * hidden :])
        )

    # eq. 7 (taught form): h' = (1 − z) ⊙ h + z ⊙ h̃
    h_new = (1 - z) * h + z * h_tilde
    return h_new, r, z


def _init_uniform(params: list[nn.Parameter], hidden_size: int) -> None:
    """Initialise parameters like torch: ``U(−1/√H, 1/√H)``.

    :param params: parameters to initialise in place.
    :param hidden_size: ``H``.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


class GRUCell(nn.Module):
    """A single GRU cell (Cho et al. 2014), parameter-compatible with
    :class:`torch.nn.GRUCell`.

    Reset-before (Cho et al. 2014, §2.3, eqs. 5–8; ``reset_after=False``)::

        r  = σ(W_r x + b_ir + U_r h + b_hr)
        z  = σ(−(W_z x + b_iz + U_z h + b_hz))     # = 1 − u, see module doc
        h̃  = tanh(W x + b_in + U (r ⊙ h) + b_hn)
        h' = (1 − z) ⊙ h + z ⊙ h̃

    Reset-after (cuDNN / ``torch.nn.GRU``; ``reset_after=True``)::

        h̃  = tanh(W x + b_in + r ⊙ (U h + b_hn))

    ``torch.nn.GRU`` writes ``h' = u ⊙ h + (1 − u) ⊙ h̃`` with ``u = σ(a_u)``
    from the same stored update row; here ``z = 1 − u = σ(−a_u)``.

    Parameters (``torch.nn.GRUCell`` names and layout, row blocks
    ``[r; update; n]``): ``weight_ih`` (3H, I), ``weight_hh`` (3H, H),
    ``bias_ih`` (3H), ``bias_hh`` (3H).

    :param input_size: ``I``.
    :param hidden_size: ``H``.
    :param reset_after: candidate variant (see above).
    """

    def __init__(self, input_size: int, hidden_size: int, *, reset_after: bool) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.reset_after = reset_after
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise all parameters from ``U(−1/√H, 1/√H)`` like torch."""
        _init_uniform(list(self.parameters()), self.hidden_size)

    def project_input(self, x: Tensor) -> Tensor:
        """Input projection ``W_ih x + b_ih`` (one matmul).

        :param x: inputs, shape ``(..., I)``.
        :return: shape ``(..., 3H)``.
        """
        return input_projection(x, self.weight_ih, self.bias_ih)

    def step_from_projection(self, xw: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step given a precomputed input projection.

        :param xw: ``W_ih x + b_ih``, shape ``(B, 3H)``.
        :param h: previous state, shape ``(B, H)``.
        :return: ``(h_new, r, z)``, each ``(B, H)``.
        """
        return gru_step(xw, h, self.weight_hh, self.bias_hh, reset_after=self.reset_after)

    def gates(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step returning the gate activations as well (for visualisation).

        :param x: input, shape ``(B, I)``.
        :param h: previous state, shape ``(B, H)``.
        :return: ``(h_new, r, z)``, each ``(B, H)``; ``z`` is the taught update
            gate (fraction of the candidate written into the state).
        """
        return self.step_from_projection(self.project_input(x), h)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """One step.

        :param x: input, shape ``(B, I)``.
        :param h: previous state, shape ``(B, H)``.
        :return: new state, shape ``(B, H)``.
        """
        return self.gates(x, h)[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"


class EquationsGRU(nn.Module):
    """Drop-in replacement for a single-layer, ``batch_first``, uni- or
    bidirectional :class:`torch.nn.GRU`, computed step by step with
    :func:`gru_step` (the equations of :class:`GRUCell`).

    Parameter names and shapes equal ``torch.nn.GRU``'s: ``weight_ih_l0``
    (3H, I), ``weight_hh_l0`` (3H, H), ``bias_ih_l0`` (3H), ``bias_hh_l0``
    (3H), plus the same with suffix ``_reverse`` when bidirectional, so
    ``load_state_dict`` works in both directions.  With ``reset_after=True``
    the results match ``torch.nn.GRU``; ``reset_after=False`` uses the taught
    Cho et al. (2014) candidate on the same parameters.

    :param input_size: ``I``.
    :param hidden_size: ``H``.
    :param bidirectional: run a second, reversed direction (``D = 2``).
    :param reset_after: candidate variant (see :class:`GRUCell`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bidirectional: bool = False,
        reset_after: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.reset_after = reset_after
        self.num_directions = 2 if bidirectional else 1
        for suffix in self._suffixes():
            self.register_parameter(
                f"weight_ih_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size, input_size))
            )
            self.register_parameter(
                f"weight_hh_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
            )
            self.register_parameter(f"bias_ih_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size)))
            self.register_parameter(f"bias_hh_l0{suffix}", nn.Parameter(torch.empty(3 * hidden_size)))
        self.reset_parameters()

    def _suffixes(self) -> list[str]:
        """Parameter-name suffixes, one per direction: ``""`` and ``"_reverse"``."""
        return ["", "_reverse"][: self.num_directions]

    def _direction_params(self, suffix: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one direction.

        :param suffix: ``""`` (forward) or ``"_reverse"``.
        """
        return (
            getattr(self, f"weight_ih_l0{suffix}"),
            getattr(self, f"weight_hh_l0{suffix}"),
            getattr(self, f"bias_ih_l0{suffix}"),
            getattr(self, f"bias_hh_l0{suffix}"),
        )

    def reset_parameters(self) -> None:
        """Initialise all parameters from ``U(−1/√H, 1/√H)`` like torch."""
        _init_uniform(list(self.parameters()), self.hidden_size)

    def _run_direction(
        self,
        x: Tensor,
        h0: Tensor,
        lengths: Tensor,
        suffix: str,
        *,
        reverse: bool,
    ) -> tuple[Tensor, Tensor]:
        """Run one direction over the (padded) batch.

        Padded steps (``t >= lengths``) keep the state and output zeros.  The
        reverse direction walks ``t = T−1 … 0``; because padded steps are
        no-ops, each sequence effectively starts at its own last real token.

        :param x: inputs, shape ``(B, T, I)``.
        :param h0: initial state, shape ``(B, H)``.
        :param lengths: real lengths, shape ``(B,)``, on ``x``'s device.
        :param suffix: parameter suffix of the direction.
        :param reverse: walk time backwards.
        :return: ``(out, h_n)`` of shapes ``(B, T, H)`` and ``(B, H)``.
        """
        w_ih, w_hh, b_ih, b_hh = self._direction_params(suffix)
        xw = input_projection(x, w_ih, b_ih)  # (B, T, 3H): all steps, one matmul
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        h = h0
        outputs: list[Tensor] = []  # in step order
        for t in steps:
            h_new, _, _ = gru_step(xw[:, t], h, w_hh, b_hh, reset_after=self.reset_after)
            m = (t < lengths).unsqueeze(-1).to(h.dtype)  # (B, 1): 1 at real steps
            h = m * h_new + (1 - m) * h  # padded steps carry the state
            outputs.append(m * h_new)  # padded steps output zeros
        if not outputs:
            return x.new_zeros(x.shape[0], 0, self.hidden_size), h
        if reverse:
            outputs.reverse()
        return torch.stack(outputs, dim=1), h

    def forward(
        self,
        x: Tensor,
        h0: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Run the GRU over a batch-first, possibly padded, batch.

        Semantics equal ``torch.nn.GRU(batch_first=True)`` applied to
        ``pack_padded_sequence(x, lengths, batch_first=True,
        enforce_sorted=False)`` and unpacked with
        ``pad_packed_sequence(..., total_length=T)``.

        :param x: inputs, shape ``(B, T, I)``.
        :param h0: initial state, shape ``(D, B, H)``; zeros when ``None``.
        :param lengths: real lengths, ``LongTensor`` of shape ``(B,)``;
            all ``T`` when ``None``.
        :return: ``(out, h_n)``: outputs of shape ``(B, T, D*H)`` (zeros at
            padded positions; forward then reverse halves), and final states
            of shape ``(D, B, H)`` (state at each sequence's last real step;
            for the reverse direction, after step ``t = 0``).
        """
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected x of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        batch, time, _ = x.shape
        if h0 is None:
            h0 = x.new_zeros(self.num_directions, batch, self.hidden_size)
        elif h0.shape != (self.num_directions, batch, self.hidden_size):
            raise ValueError(
                f"expected h0 of shape {(self.num_directions, batch, self.hidden_size)}, "
                f"got {tuple(h0.shape)}"
            )
        if lengths is None:
            lengths = torch.full((batch,), time, dtype=torch.long, device=x.device)
        else:
            lengths = lengths.to(device=x.device, dtype=torch.long)
            if lengths.shape != (batch,):
                raise ValueError(f"expected lengths of shape ({batch},), got {tuple(lengths.shape)}")

        outs: list[Tensor] = []
        finals: list[Tensor] = []
        for d, suffix in enumerate(self._suffixes()):
            out_d, h_d = self._run_direction(x, h0[d], lengths, suffix, reverse=d == 1)
            outs.append(out_d)
            finals.append(h_d)
        return torch.cat(outs, dim=-1), torch.stack(finals, dim=0)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, batch_first=True, "
            f"bidirectional={self.bidirectional}, reset_after={self.reset_after}"
        )
