"""RNNsearch (Bahdanau et al. 2015, "Neural Machine Translation by Jointly Learning to Align and Translate"):
a bidirectional GRU encoder writes one annotation per source token, and the decoder attends over them at every
step. Letters: B batch, S source length, T target length, H hidden units, K = 2H annotation size, M readout.
"""

from __future__ import annotations

from torch import Tensor

from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.base import TranslationModel
from nmt.model.decoders import AttentionDecoder, AttentionState
from nmt.model.encoders import BiEncoder


class RNNSearch(TranslationModel):
    """``model.arch=rnnsearch``: :class:`BiEncoder` + :class:`AttentionDecoder`."""

    attends = True

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__(cfg, src_vocab, tgt_vocab)
        common = self.rnn_options
        self.encoder = BiEncoder(src_vocab, cfg.emb_dim, cfg.hidden_dim, **common)
        self.decoder = AttentionDecoder(tgt_vocab, cfg.emb_dim, cfg.hidden_dim, cfg.attention_dim, cfg.maxout_dim,
                                        cfg.maxout_pool, **common)
        self.init_weights()

    def encode(self, src: Tensor, src_len: Tensor) -> AttentionState:
        """The decoder's initial state in search for (B, S) sources of lengths (B,)."""
        annotations, bwd_first = self.encoder(src, src_len)
        return self.decoder.start(annotations, bwd_first, src != PAD)

    def attention_and_features(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Teacher-forced features (B, T, M) and attention weights (B, T, S)."""
        annotations, bwd_first = self.encoder(batch.src, batch.src_len)
        return self.decoder.features(batch.tgt_in, annotations, bwd_first, batch.src != PAD)

    def features(self, batch: Batch) -> Tensor:
        return self.attention_and_features(batch)[0]

    def sentence_vector(self, src: Tensor, src_len: Tensor) -> Tensor:
        """A fixed-size representation (B, 2H) of each source: the mean of its annotations (RNNsearch has no c)."""
        annotations, _ = self.encoder(src, src_len)
        return annotations.sum(1) / src_len.unsqueeze(1).to(annotations.dtype)
