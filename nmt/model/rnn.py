"""One interface over the two GRU implementations: fused ``torch.nn.GRU`` and the hand-written equations."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.choices import Cell
from nmt.model.gru import EquationsGRU, GRUCell


def make_gru(input_size: int, hidden_size: int, *, cell: Cell, reset_after: bool,
             bidirectional: bool = False) -> nn.Module:
    """A single-layer batch-first GRU: ``torch.nn.GRU`` (cell="fused") or :class:`EquationsGRU`.

    Both hold the same parameter names, so a state dict trained with one loads into the other.
    """
    if cell == Cell.fused:
        return nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
    return EquationsGRU(input_size, hidden_size, reset_after=reset_after, bidirectional=bidirectional)


def make_gru_cell(input_size: int, hidden_size: int, *, cell: Cell, reset_after: bool) -> nn.Module:
    """One GRU step ``h' = cell(x, h)``: ``torch.nn.GRUCell`` or :class:`GRUCell` (same parameter names)."""
    if cell == Cell.fused:
        return nn.GRUCell(input_size, hidden_size)
    return GRUCell(input_size, hidden_size, reset_after=reset_after)


def run_gru(rnn: nn.Module, x: Tensor, h0: Tensor | None = None, lengths: Tensor | None = None
            ) -> tuple[Tensor, Tensor]:
    """Run either GRU over a padded batch.

    :param x: (B, T, I) inputs. :param h0: (B, H) initial state or None (zeros).
    :param lengths: (B,) real lengths; None when every row is used in full (or padding at the end
        does not matter to the caller, as in the teacher-forced decoder).
    :return: outputs (B, T, D*H) (zeros past each length) and the last state (B, H): the state after the
        last real token, or for a bidirectional GRU the backward direction's state after the first token.
    """
    h0_ = None if h0 is None else h0.unsqueeze(0).contiguous()
    if isinstance(rnn, EquationsGRU):
        out, h_n = rnn(x, h0_, lengths)
        return out, h_n[-1]
    if lengths is None:
        out, h_n = rnn(x, h0_)
        return out, h_n[-1]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed, h0_)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n[-1]


def init_cho2014(module: nn.Module, std: float) -> None:
    """Cho et al. (2014), appendix A.1: recurrent matrices orthogonal (one block per gate), other
    weights N(0, std), biases zero."""
    for name, p in module.named_parameters():
        if "weight_hh" in name:
            for block in p.data.chunk(3, dim=0):
                nn.init.orthogonal_(block)
        elif "bias" in name:
            nn.init.zeros_(p)
        else:
            nn.init.normal_(p, 0.0, std)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
