"""The RNNsearch decoder's fused loop (nmt.model.attention_loop) computes what the step-by-step loop under autograd
computes: the same outputs and the same gradient for every input and weight, on padded sources."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.model import build_model
from nmt.model.attention_loop import attention_gru_loop


def _decoder_inputs() -> tuple:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=6, hidden_dim=5, attention_dim=7, maxout_dim=4,
                  dropout=0.0)
    model = build_model(cfg, 30, 40).double()
    return model, collate([[5, 6, 7, 8, 9], [5, 6], [7]], [[6]] * 3, range(3))  # padded sources


def _gradients(outputs: tuple, inputs: list) -> list:
    torch.manual_seed(1)
    loss = sum((out * torch.randn_like(out)).sum() for out in outputs)  # every output gets a gradient
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)  # one step uses no embedding
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_fused_loop_equals_the_step_loop_in_values_and_gradients(steps: int) -> None:
    model, batch = _decoder_inputs()
    dec = model.decoder
    assert isinstance(dec.cell, torch.nn.GRUCell)
    e = torch.randn(3, steps, 6, dtype=torch.double, requires_grad=True)
    results = []
    for fused in (False, True):
        start = model.encode(batch.src, batch.src_len)
        if fused:
            att, cell = dec.attention, dec.cell
            outputs = attention_gru_loop(e, start.keys, start.annotations, start.mask, start.s, att.w_a.weight,
                                         att.v_a.weight, cell.weight_ih, cell.bias_ih, cell.weight_hh, cell.bias_hh)
        else:
            outputs = dec.step_loop(e, start)
        used = [*model.encoder.parameters(), *dec.bridge.parameters(), *dec.attention.parameters(),
                *dec.cell.parameters()]
        results.append((outputs, _gradients(outputs, [e, *used])))
    (want, want_grads), (got, got_grads) = results
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    assert (got[2][1, :, 2:] == 0).all()  # no weight on the padding of the 2-piece source
    for a, b in zip(want_grads, got_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert sum(g.abs().sum() for g in got_grads) > 0


def test_fused_loop_passes_gradcheck() -> None:
    torch.manual_seed(0)
    d = dict(dtype=torch.double)
    b, t, s, e_dim, h, a = 2, 3, 4, 3, 2, 3
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    shapes = [(b, t, e_dim), (b, s, a), (b, s, 2 * h), None, (b, h), (a, h), (1, a), (3 * h, e_dim + 2 * h),
              (3 * h,), (3 * h, h), (3 * h,)]
    args = [mask if shape is None else torch.randn(shape, **d) for shape in shapes]
    args = [x if x.dtype == torch.bool else x.requires_grad_() for x in args]
    assert torch.autograd.gradcheck(attention_gru_loop, args)
