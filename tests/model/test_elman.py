"""Tests for :mod:`nmt.model.elman` against ``torch.nn.RNNCell`` and ``torch.nn.RNN`` on the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.model.elman import ElmanCell, EquationsElman

IN, H, B, T = 5, 7, 3, 6
LENGTHS = [6, 2, 4]


def test_cell_equals_torch_rnncell() -> None:
    torch.manual_seed(0)
    ref, cell = nn.RNNCell(IN, H), ElmanCell(IN, H)
    cell.load_state_dict(ref.state_dict())
    x, h = torch.randn(B, IN), torch.randn(B, H)
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=0, atol=1e-6)
    torch.testing.assert_close(cell(x, h), torch.tanh(x @ ref.weight_ih.T + ref.bias_ih + h @ ref.weight_hh.T
                                                      + ref.bias_hh), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_equals_torch_rnn_on_a_padded_batch(bidirectional: bool) -> None:
    torch.manual_seed(1)
    ref = nn.RNN(IN, H, batch_first=True, bidirectional=bidirectional)
    eq = EquationsElman(IN, H, bidirectional=bidirectional)
    eq.load_state_dict(ref.state_dict(), strict=True)
    x, lengths = torch.randn(B, T, IN), torch.tensor(LENGTHS)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_ref, h_ref = ref(packed)
    out_ref, _ = pad_packed_sequence(out_ref, batch_first=True, total_length=T)
    out, h = eq(x, None, lengths)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-5)
