"""The RNN Encoder-Decoder of Cho et al. (2014): a GRU encoder reads the source into one summary vector c,
and a GRU decoder, started from c and shown c and the previous word at every step, writes the translation
through a maxout readout. Letters: B batch, S source length, H hidden units.
"""

from __future__ import annotations

from torch import Tensor

from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.model.base import TranslationModel
from nmt.model.decoders import SummaryDecoder, SummaryState
from nmt.model.encoders import SummaryEncoder


class RNNEncoderDecoder(TranslationModel):
    """``model.arch=cho2014``: :class:`SummaryEncoder` + :class:`SummaryDecoder`."""

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__(cfg, src_vocab, tgt_vocab)
        common = self.rnn_options
        self.encoder = SummaryEncoder(src_vocab, cfg.emb_dim, cfg.hidden_dim, reverse=cfg.reverse_source, **common)
        self.decoder = SummaryDecoder(tgt_vocab, cfg.emb_dim, cfg.hidden_dim, cfg.maxout_dim, cfg.maxout_pool,
                                      **common)
        self.init_weights()

    def features(self, batch: Batch) -> Tensor:
        _, c = self.encoder(batch.src, batch.src_len)
        return self.decoder.features(batch.tgt_in, c)

    def sentence_vector(self, src: Tensor, src_len: Tensor) -> Tensor:
        """The summary c (B, H) of each source: Cho 2014's representation of a phrase (section 4.4)."""
        return self.encoder(src, src_len)[1]

    def encode(self, src: Tensor, src_len: Tensor) -> SummaryState:
        """The decoder's initial state for (B, S) sources of lengths (B,)."""
        return self.decoder.start(self.encoder(src, src_len)[1])
