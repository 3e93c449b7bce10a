"""The models, on one base (base.py): Cho et al. (2014) in cho2014.py and RNNsearch in rnnsearch.py, built
from the encoders, decoders, attention, maxout readout and GRU modules beside them.
``build_model`` picks one from ``ModelConfig.arch``."""

from __future__ import annotations

from nmt.choices import Arch
from nmt.config import ModelConfig
from nmt.model.base import TranslationModel
from nmt.model.cho2014 import RNNEncoderDecoder
from nmt.model.rnnsearch import RNNSearch

ARCHS: dict[Arch, type[TranslationModel]] = {Arch.cho2014: RNNEncoderDecoder, Arch.rnnsearch: RNNSearch}


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> TranslationModel:
    """The model ``cfg.arch`` names, sized by ``cfg`` and the two vocabularies."""
    return ARCHS[cfg.arch](cfg, src_vocab, tgt_vocab)
