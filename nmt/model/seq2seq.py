"""The RNN Encoder-Decoder of Cho et al. (2014): the one place that knows the whole composition.

It exposes what training (``loss``), scoring (``score``) and search (``encode``, ``init_state``,
``step``, ``reorder``) need, and holds no vocabulary, optimizer or I/O.
"""

from __future__ import annotations

from dataclasses import asdict

import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.decoder import Decoder
from nmt.model.encoder import Encoder
from nmt.model.rnn import init_cho2014

State = tuple[Tensor, Tensor]  # decoder state (B, H) and summary c (B, H)


class EncoderDecoder(nn.Module):
    """What every model shares: the loss, log p(y|x) and a self-description, all computed from
    ``features(batch)`` (B, T, M) and the output layer ``decoder.out`` (M -> V)."""

    decoder: nn.Module

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab

    @property
    def rnn_options(self) -> dict:
        """The settings every GRU and dropout of the model shares."""
        return {"dropout": self.cfg.dropout, "cell": self.cfg.cell, "reset_after": self.cfg.reset_after}

    def _init_weights(self) -> None:
        if self.cfg.init == "cho2014":
            init_cho2014(self, self.cfg.init_std)
        elif self.cfg.init != "torch":
            raise ValueError(f"unknown model.init {self.cfg.init!r}: use cho2014 or torch")

    def describe(self) -> dict:
        """What a checkpoint needs to rebuild this model."""
        return {"config": asdict(self.cfg), "src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab}

    def features(self, batch: Batch) -> Tensor:
        """Teacher-forced readout features (B, T, M)."""
        raise NotImplementedError

    def token_logprobs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Logits at the real target positions only (padding costs no softmax).

        :return: logits (N, V) and targets (N,), N = number of non-pad target positions.
        """
        mask = batch.tgt_out != PAD
        return self.decoder.out(self.features(batch)[mask]), batch.tgt_out[mask]

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy over the batch's target tokens (divide by ``batch.n_tgt_tokens``)."""
        logits, gold = self.token_logprobs(batch)
        return F.cross_entropy(logits, gold, reduction="sum", label_smoothing=label_smoothing)

    def score(self, batch: Batch) -> Tensor:
        """log p(y|x) of each pair (B,), summed over target tokens incl. EOS (Cho 2014's scoring use)."""
        logp = self.decoder.out(self.features(batch)).log_softmax(-1)  # (B, T, V)
        tok = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        return (tok * (batch.tgt_out != PAD)).sum(-1)

    def step_logits(self, prev: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Unnormalised scores (B, V) of the next token after ``prev`` (B,), and the new state."""
        raise NotImplementedError

    def step(self, prev: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Log-probabilities (B, V) of the next token after ``prev`` (B,), and the new state."""
        logits, state = self.step_logits(prev, state)
        return logits.log_softmax(-1), state

    @staticmethod
    def reorder(state: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
        """Select (and repeat) batch rows of a state, e.g. for beam search: ``index`` (B',)."""
        return tuple(t.index_select(0, index) for t in state)


class Seq2Seq(EncoderDecoder):
    """Encoder + decoder. ``cfg`` fixes the sizes; vocabulary sizes come from the tokenizer."""

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__(cfg, src_vocab, tgt_vocab)
        common = self.rnn_options
        self.encoder = Encoder(src_vocab, cfg.emb_dim, cfg.hidden_dim, reverse=cfg.reverse_source, **common)
        self.decoder = Decoder(tgt_vocab, cfg.emb_dim, cfg.hidden_dim, cfg.maxout_dim, cfg.maxout_pool, **common)
        self._init_weights()

    def features(self, batch: Batch) -> Tensor:
        _, c = self.encoder(batch.src, batch.src_len)
        return self.decoder.features(batch.tgt_in, c)

    def summary(self, src: Tensor, src_len: Tensor) -> Tensor:
        """The summary vector c (B, H) of each source: Cho 2014's representation of a phrase."""
        return self.encoder(src, src_len)[1]

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """Initial decoding state for (B, S) sources."""
        _, c = self.encoder(src, src_len)
        return self.decoder.init_state(c), c

    def step_logits(self, prev: Tensor, state: State) -> tuple[Tensor, State]:
        """Unnormalised scores (B, V) of the next token after ``prev`` (B,), and the new state."""
        h, c = state
        logits, h = self.decoder.step(prev, h, c)
        return logits, (h, c)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
