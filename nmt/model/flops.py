"""Useful floating-point work of a model, counted from its shapes on real (non-pad) tokens only.

A multiply-add counts as 2 FLOPs; elementwise work (gates, tanh, softmax) is left out, as it is small next to the
matrix products. Training costs about 3x the forward pass (the backward pass computes gradients for both the
inputs and the weights of every product).
Letters: E embedding, H hidden units, A alignment units, M maxout units (times ``maxout_pool`` pieces), V target
vocabulary, S source length, T target length (predicted positions, EOS included).
"""

from __future__ import annotations

from collections.abc import Sequence

from nmt.choices import Arch, CellType
from nmt.config import ModelConfig


def _rnn_macs(inputs: int, hidden: int, cell_type: CellType = CellType.gru) -> int:
    """One recurrent step: input and recurrent products for the unit's gate blocks."""
    return CellType(cell_type).gate_blocks * hidden * (inputs + hidden)


def forward_flops(cfg: ModelConfig, tgt_vocab: int, src_lens: Sequence[int], tgt_lens: Sequence[int]) -> int:
    """FLOPs of one teacher-forced forward pass (loss included) over sentence pairs of these real lengths."""
    e, h, a, p = cfg.emb_dim, cfg.hidden_dim, cfg.attention_dim, cfg.maxout_dim * cfg.maxout_pool
    readout_out = cfg.maxout_dim * tgt_vocab
    macs = 0
    for s, t in zip(src_lens, tgt_lens, strict=True):
        if cfg.arch == Arch.rnnsearch:
            per_src = 2 * _rnn_macs(e, h, cfg.cell_type) + 2 * h * a  # both directions, and the keys U_a h_j
            step = _rnn_macs(e + 2 * h, h, cfg.cell_type)  # the decoder's GRU: t − 1 steps (s_t is never used)
            per_tgt = h * a + (h + e + 2 * h) * p + readout_out
            per_pair = a + 2 * h  # v_a . tanh(...) and the weighted sum of annotations
            macs += s * per_src + h * h + t * per_tgt + max(t - 1, 0) * step + s * t * per_pair
        else:
            per_tgt = _rnn_macs(e + h, h, cfg.cell_type) + (h + e) * p + readout_out  # c enters every step
            macs += s * _rnn_macs(e, h, cfg.cell_type) + 2 * h * h + t * per_tgt + h * p  # O_c c once a sentence
    return 2 * macs


def training_flops(cfg: ModelConfig, tgt_vocab: int, src_lens: Sequence[int], tgt_lens: Sequence[int]) -> int:
    """Forward plus backward: 3x the forward FLOPs."""
    return 3 * forward_flops(cfg, tgt_vocab, src_lens, tgt_lens)
