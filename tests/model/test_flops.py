"""The FLOP count from shapes equals what torch's FlopCounterMode sees on a batch without padding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.model import build_model
from nmt.model.flops import forward_flops, training_flops


def _counted(model, batch, backward: bool = False) -> int:
    """Products torch counts in the loss (forward only: without autograd, since the training loss computes the
    output layer's gradients in its forward pass, nmt.model.loss), or in the loss and its backward pass."""
    with FlopCounterMode(display=False) as fc, torch.set_grad_enabled(backward):
        loss = model.loss(batch)
        if backward:
            loss.backward()
    return fc.get_total_flops()


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_shape_count_matches_torch_on_unpadded_batches(arch: str) -> None:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch=arch, emb_dim=24, hidden_dim=32, attention_dim=20, maxout_dim=16, dropout=0.0)
    model = build_model(cfg, 50, 60)
    batch = collate([[5] * 7] * 3, [[6] * 4] * 3, range(3))  # 3 pairs, 7 source pieces, 5 predicted positions
    assert forward_flops(cfg, 60, [7] * 3, [5] * 3) == _counted(model, batch)
    # backward costs about twice the forward (the embedding lookups' gradients are not products)
    assert training_flops(cfg, 60, [7] * 3, [5] * 3) == pytest.approx(_counted(model, batch, backward=True), rel=0.1)


def test_padding_is_work_but_not_useful_work() -> None:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=24, hidden_dim=32, attention_dim=20, maxout_dim=16)
    src, tgt = [[5] * 9, [5] * 2], [[6] * 6, [6] * 1]
    useful = forward_flops(cfg, 60, [9, 2], [7, 2])
    assert useful < _counted(build_model(cfg, 50, 60), collate(src, tgt, range(2)))
