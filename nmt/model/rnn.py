"""One interface over the recurrent units (``model.cell_type``: GRU, LSTM, Elman) and their implementations
(``model.cell``: torch's fused modules, or the hand-written equations of nmt.model.gru and nmt.model.elman).

A recurrent *state* is one tensor per sentence: h (B, H) for a GRU or an Elman network, and [h; c] (B, 2H) for an
LSTM, whose memory cell travels beside h. :func:`hidden` takes h out of it; the rest of the model reads only h.
Letters: B batch, T time, I input, H hidden, D directions.
"""

from __future__ import annotations

import torch
import torch.ao.nn.quantized.dynamic as qd
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.choices import Cell, CellType
from nmt.model.elman import ElmanCell, EquationsElman, elman_step
from nmt.model.gru import EquationsGRU, GRUCell, gru_step
from nmt.model.unroll import EquationsRNN

LSTMS = (nn.LSTM, nn.LSTMCell, qd.LSTM, qd.LSTMCell)  # the modules whose state carries a memory cell
# the one-step cells whose input product W_ih x + b_ih a caller may compute by parts (step_from_input); an int8
# cell's weights are packed, so it takes its input whole (cell_step)
FLOAT_CELLS = (nn.GRUCell, nn.LSTMCell, nn.RNNCell, GRUCell, ElmanCell)


def make_rnn(input_size: int, hidden_size: int, *, cell_type: CellType, cell: Cell, reset_after: bool,
             bidirectional: bool = False) -> nn.Module:
    """A single-layer batch-first recurrent layer. The fused and the equations layer of a unit hold the same
    parameter names, so a state dict trained with one loads into the other."""
    if cell_type == CellType.lstm:
        return nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
    if cell == Cell.fused:
        module = nn.GRU if cell_type == CellType.gru else nn.RNN
        return module(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
    if cell_type == CellType.gru:
        return EquationsGRU(input_size, hidden_size, reset_after=reset_after, bidirectional=bidirectional)
    return EquationsElman(input_size, hidden_size, bidirectional=bidirectional)


def make_rnn_cell(input_size: int, hidden_size: int, *, cell_type: CellType, cell: Cell, reset_after: bool
                  ) -> nn.Module:
    """One step of the unit, for :func:`cell_step`: torch's ``GRUCell``/``LSTMCell``/``RNNCell`` or the
    equations' :class:`GRUCell` / :class:`ElmanCell` (same parameter names)."""
    if cell_type == CellType.lstm:
        return nn.LSTMCell(input_size, hidden_size)
    if cell == Cell.fused:
        return nn.GRUCell(input_size, hidden_size) if cell_type == CellType.gru else nn.RNNCell(input_size, hidden_size)
    if cell_type == CellType.gru:
        return GRUCell(input_size, hidden_size, reset_after=reset_after)
    return ElmanCell(input_size, hidden_size)


def _is_lstm(module: nn.Module) -> bool:
    return isinstance(module, LSTMS)


def hidden(state: Tensor, hidden_size: int) -> Tensor:
    """h of a recurrent state (..., H) or (..., 2H): its first H columns."""
    return state[..., :hidden_size]


def start_state(h0: Tensor, module: nn.Module) -> Tensor:
    """A state that starts from h0 (B, H): with an empty memory cell for an LSTM."""
    return torch.cat([h0, torch.zeros_like(h0)], dim=-1) if _is_lstm(module) else h0


def cell_step(cell: nn.Module, x: Tensor, state: Tensor) -> Tensor:
    """The state after one step of ``cell`` on x (B, I) from ``state`` (B, H) or (B, 2H)."""
    if not _is_lstm(cell):
        return cell(x, state)
    h, c = cell(x, state.chunk(2, dim=-1))
    return torch.cat([h, c], dim=-1)


def splits_input(cell: nn.Module) -> bool:
    """Whether :func:`step_from_input` can step ``cell`` (every float cell of :func:`make_rnn_cell`)."""
    return isinstance(cell, FLOAT_CELLS)


def step_from_input(cell: nn.Module, xw: Tensor, state: Tensor) -> Tensor:
    """:func:`cell_step` with the input product given: ``xw`` = W_ih x + b_ih (B, G*H), G the cell's gate blocks
    (3 GRU, 4 LSTM, 1 Elman), which a caller can assemble from parts computed once (nmt.model.decoders)."""
    if isinstance(cell, nn.GRUCell):  # torch's gate order r, z, n and keep-gate z (torch.nn.GRUCell's docs)
        i_r, i_z, i_n = xw.chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(state, cell.weight_hh, cell.bias_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (state - n)
    if isinstance(cell, GRUCell):
        return gru_step(xw, state, cell.weight_hh, cell.bias_hh, reset_after=cell.reset_after)[0]
    if isinstance(cell, ElmanCell | nn.RNNCell):
        return elman_step(xw, state, cell.weight_hh, cell.bias_hh)
    if isinstance(cell, nn.LSTMCell):  # torch's gate order i, f, g, o; the state is [h; c]
        h, c = state.chunk(2, dim=-1)
        i, f, g, o = (xw + F.linear(h, cell.weight_hh, cell.bias_hh)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], dim=-1)
    raise TypeError(f"{type(cell).__name__} takes its input whole: use cell_step")


def run_rnn(rnn: nn.Module, x: Tensor, state0: Tensor | None = None, lengths: Tensor | None = None
            ) -> tuple[Tensor, Tensor]:
    """Run a recurrent layer over a padded batch.

    :param x: (B, T, I) inputs. :param state0: (B, H) or, for an LSTM, (B, 2H) initial state; None: zeros.
    :param lengths: (B,) real lengths; None when every row is used in full (or padding at the end does not matter
        to the caller, as in the teacher-forced decoder).
    :return: outputs h (B, T, D*H) (zeros past each length) and the last state: after the last real token, or for
        a bidirectional layer the backward direction's after the first token.
    """
    lstm = _is_lstm(rnn)
    if state0 is None:
        init = None
    elif lstm:
        init = tuple(part.unsqueeze(0).contiguous() for part in state0.chunk(2, dim=-1))
    else:
        init = state0.unsqueeze(0).contiguous()
    if isinstance(rnn, EquationsRNN):
        out, last = rnn(x, init, lengths)
    elif lengths is None:
        out, last = rnn(x, init)
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, last = rnn(packed, init)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, torch.cat([last[0][-1], last[1][-1]], dim=-1) if lstm else last[-1]


def init_cho2014(module: nn.Module, std: float) -> None:
    """Cho et al. (2014), appendix A.1: recurrent matrices orthogonal (one block per gate), other
    weights N(0, std), biases zero."""
    for name, p in module.named_parameters():
        if "weight_hh" in name:
            for block in p.data.chunk(p.shape[0] // p.shape[1], dim=0):  # G blocks of (H, H)
                nn.init.orthogonal_(block)
        elif "bias" in name:
            nn.init.zeros_(p)
        else:
            nn.init.normal_(p, 0.0, std)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
