"""The models. ``build_model`` picks one from ``ModelConfig.arch``."""

from __future__ import annotations

from nmt.config import ModelConfig
from nmt.model.rnnsearch import RNNSearch
from nmt.model.seq2seq import EncoderDecoder, Seq2Seq

ARCHS = {"cho2014": Seq2Seq, "rnnsearch": RNNSearch}


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
    """The model ``cfg.arch`` names, sized by ``cfg`` and the two vocabularies."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"unknown model.arch {cfg.arch!r}: use one of {', '.join(ARCHS)}")
    return ARCHS[cfg.arch](cfg, src_vocab, tgt_vocab)
