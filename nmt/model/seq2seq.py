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


class Seq2Seq(nn.Module):
    """Encoder + decoder. ``cfg`` fixes the sizes; vocabulary sizes come from the tokenizer."""

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        common = {"dropout": cfg.dropout, "cell": cfg.cell, "reset_after": cfg.reset_after}
        self.encoder = Encoder(src_vocab, cfg.emb_dim, cfg.hidden_dim, reverse=cfg.reverse_source, **common)
        self.decoder = Decoder(tgt_vocab, cfg.emb_dim, cfg.hidden_dim, cfg.maxout_dim, cfg.maxout_pool, **common)
        if cfg.init == "cho2014":
            init_cho2014(self, cfg.init_std)
        elif cfg.init != "torch":
            raise ValueError(f"unknown model.init {cfg.init!r}: use cho2014 or torch")

    def describe(self) -> dict:
        """What a checkpoint needs to rebuild this model."""
        return {"config": asdict(self.cfg), "src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab}

    def token_logprobs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Logits at the real target positions only (padding costs no softmax).

        :return: logits (N, V) and targets (N,), N = number of non-pad target positions.
        """
        _, c = self.encoder(batch.src, batch.src_len)
        feats = self.decoder.features(batch.tgt_in, c)  # (B, T, M)
        mask = batch.tgt_out != PAD
        return self.decoder.out(feats[mask]), batch.tgt_out[mask]

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy over the batch's target tokens (divide by ``batch.n_tgt_tokens``)."""
        logits, gold = self.token_logprobs(batch)
        return F.cross_entropy(logits, gold, reduction="sum", label_smoothing=label_smoothing)

    def score(self, batch: Batch) -> Tensor:
        """log p(y|x) of each pair (B,), summed over target tokens incl. EOS (Cho 2014's scoring use)."""
        _, c = self.encoder(batch.src, batch.src_len)
        logp = self.decoder.out(self.decoder.features(batch.tgt_in, c)).log_softmax(-1)  # (B, T, V)
        tok = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        return (tok * (batch.tgt_out != PAD)).sum(-1)

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """Initial decoding state for (B, S) sources."""
        _, c = self.encoder(src, src_len)
        return self.decoder.init_state(c), c

    def step(self, prev: Tensor, state: State) -> tuple[Tensor, State]:
        """Log-probabilities (B, V) of the next token after ``prev`` (B,), and the new state."""
        h, c = state
        logits, h = self.decoder.step(prev, h, c)
        return logits.log_softmax(-1), (h, c)

    @staticmethod
    def reorder(state: State, index: Tensor) -> State:
        """Select (and repeat) batch rows of a state, e.g. for beam search: ``index`` (B',)."""
        return state[0].index_select(0, index), state[1].index_select(0, index)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
