"""Tiny Cho 2014 models and random batches, shared by the model tests (tests/model/) and the search tests."""

from __future__ import annotations

from dataclasses import replace

import torch

from nmt.config import ModelConfig
from nmt.data.batching import Batch, collate
from nmt.data.tokenizer import EOS, PAD
from nmt.model.cho2014 import RNNEncoderDecoder

# Tiny, mutually distinct dimensions: E (emb), H (hidden), M (maxout), V_S / V_T (vocabularies).
E, H, M, V_S, V_T = 10, 14, 6, 23, 19
SRC_LENS, TGT_LENS = [5, 2, 7, 1], [3, 6, 1, 4]  # unsorted, one length-1 sentence each


def model_cfg(**kw) -> ModelConfig:
    # init="torch": weights large enough that argmax decisions are not near-ties.
    return replace(ModelConfig(), **{"emb_dim": E, "hidden_dim": H, "maxout_dim": M, "dropout": 0.3,
                                     "init": "torch", **kw})


def tiny_model(seed: int = 0, **kw) -> RNNEncoderDecoder:
    """A Cho 2014 model in eval mode with the sizes above (``kw`` overrides ModelConfig fields)."""
    torch.manual_seed(seed)
    return RNNEncoderDecoder(model_cfg(**kw), V_S, V_T).eval()


def random_batch(seed: int = 1, src_lens: list[int] = SRC_LENS, tgt_lens: list[int] = TGT_LENS) -> Batch:
    g = torch.Generator().manual_seed(seed)
    src = [torch.randint(EOS + 1, V_S, (n,), generator=g).tolist() for n in src_lens]
    tgt = [torch.randint(EOS + 1, V_T, (n,), generator=g).tolist() for n in tgt_lens]
    return collate(src, tgt, range(len(src)))


def sub_batch(b: Batch, rows: list[int]) -> Batch:
    """A sub-batch, re-collated (so its padding is only as wide as its own longest sentence)."""
    src = [b.src[i, : b.src_len[i]].tolist() for i in rows]
    tgt = [b.tgt_out[i, : int((b.tgt_out[i] != PAD).sum()) - 1].tolist() for i in rows]
    return collate(src, tgt, rows)
