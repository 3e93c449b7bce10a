"""RNNsearch (Bahdanau et al. 2015, "Neural Machine Translation by Jointly Learning to Align and Translate").

A bidirectional GRU encoder writes one annotation ``h_j = [fwd h_j; bwd h_j]`` per source token; at every
step the decoder attends over them (``nmt.model.attention``) and

    s_0 = tanh(W_s bwd h_1)                                   (appendix A.2.2)
    c_i = attention(s_{i-1}, h)
    t_i = maxout(U_o s_{i-1} + V_o E y_{i-1} + C_o c_i)       (the readout, appendix A.2.2)
    p(y_i | y_<i, x) = softmax(W_o t_i)
    s_i = GRU(s_{i-1}, [E y_{i-1}; c_i])

Letters: B batch, S source length, T target length, E embedding, H hidden units (per encoder direction
and in the decoder), K = 2H annotation size, A alignment units, M maxout units, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.attention import AdditiveAttention
from nmt.model.rnn import make_gru, make_gru_cell, run_gru
from nmt.model.seq2seq import EncoderDecoder

State = tuple[Tensor, Tensor, Tensor, Tensor]  # s (B, H), annotations (B, S, K), keys (B, S, A), mask (B, S)


class BiEncoder(nn.Module):
    """Embedding + bidirectional GRU. :param vocab_size: source V. :param emb_dim: E. :param hidden_dim: H."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, *, dropout: float, cell: str,
                 reset_after: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_gru(emb_dim, hidden_dim, cell=cell, reset_after=reset_after, bidirectional=True)

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        """:param src: (B, S) ids. :param src_len: (B,) lengths >= 1.

        :return: annotations (B, S, 2H) (zeros on padding) and the backward state at the first token (B, H).
        """
        assert src.dim() == 2 and src_len.shape == src.shape[:1], f"src {tuple(src.shape)}, len {tuple(src_len.shape)}"
        return run_gru(self.rnn, self.dropout(self.embed(src)), None, src_len)


class AttentionDecoder(nn.Module):
    """GRU decoder with additive attention and a maxout readout.

    :param vocab_size: target V. :param emb_dim: E. :param hidden_dim: H. :param attn_dim: A.
    :param maxout_dim: M units, each the max of ``maxout_pool`` pieces.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, attn_dim: int, maxout_dim: int,
                 maxout_pool: int, *, dropout: float, cell: str, reset_after: bool) -> None:
        super().__init__()
        ctx_dim = 2 * hidden_dim
        self.pool = maxout_pool
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.init = nn.Linear(hidden_dim, hidden_dim)  # W_s
        self.attention = AdditiveAttention(hidden_dim, ctx_dim, attn_dim)
        self.cell = make_gru_cell(emb_dim + ctx_dim, hidden_dim, cell=cell, reset_after=reset_after)
        self.o_s = nn.Linear(hidden_dim, maxout_dim * maxout_pool)  # U_o
        self.o_y = nn.Linear(emb_dim, maxout_dim * maxout_pool, bias=False)  # V_o
        self.o_c = nn.Linear(ctx_dim, maxout_dim * maxout_pool, bias=False)  # C_o
        self.out = nn.Linear(maxout_dim, vocab_size)  # W_o, then the softmax

    def init_state(self, bwd_first: Tensor) -> Tensor:
        """s_0 (B, H) from the backward encoder state at the first source token (B, H)."""
        return torch.tanh(self.init(bwd_first))

    def _readout(self, s_prev: Tensor, e: Tensor, ctx: Tensor) -> Tensor:
        """Maxout features (..., M) from s_{i-1} (..., H), E y_{i-1} (..., E) and c_i (..., K)."""
        t = self.o_s(s_prev) + self.o_y(e) + self.o_c(ctx)
        return self.dropout(t.unflatten(-1, (-1, self.pool)).amax(-1))

    def features(self, tgt_in: Tensor, annotations: Tensor, mask: Tensor, s0: Tensor
                 ) -> tuple[Tensor, Tensor]:
        """Teacher-forced readout features for every target position.

        :param tgt_in: (B, T) BOS + target ids. :param annotations: (B, S, K). :param mask: (B, S).
        :param s0: (B, H) initial state.
        :return: features (B, T, M) (``self.out`` makes logits) and attention weights (B, T, S).
        """
        e = self.dropout(self.embed(tgt_in))  # (B, T, E)
        keys = self.attention.project_keys(annotations)
        s, states, contexts, weights = s0, [], [], []
        for t in range(tgt_in.shape[1]):  # the attention query depends on the previous state: one step at a time
            ctx, alpha = self.attention(s, keys, annotations, mask)
            states.append(s)
            contexts.append(ctx)
            weights.append(alpha)
            s = self.cell(torch.cat([e[:, t], ctx], dim=-1), s)
        feats = self._readout(torch.stack(states, 1), e, torch.stack(contexts, 1))
        return feats, torch.stack(weights, 1)

    def step(self, prev: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """One decoding step: logits (B, V) after ``prev`` (B,), the new state, and the weights (B, S)."""
        s, annotations, keys, mask = state
        e = self.embed(prev)
        ctx, alpha = self.attention(s, keys, annotations, mask)
        logits = self.out(self._readout(s, e, ctx))
        return logits, (self.cell(torch.cat([e, ctx], dim=-1), s), annotations, keys, mask), alpha


class RNNSearch(EncoderDecoder):
    """Bidirectional encoder + attention decoder, with the interface of :class:`nmt.model.seq2seq.Seq2Seq`."""

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__(cfg, src_vocab, tgt_vocab)
        common = self.rnn_options
        self.encoder = BiEncoder(src_vocab, cfg.emb_dim, cfg.hidden_dim, **common)
        self.decoder = AttentionDecoder(tgt_vocab, cfg.emb_dim, cfg.hidden_dim, cfg.attention_dim, cfg.maxout_dim,
                                        cfg.maxout_pool, **common)
        self._init_weights()

    def _encode(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        annotations, bwd_first = self.encoder(src, src_len)
        return annotations, src != PAD, self.decoder.init_state(bwd_first)

    def attention_and_features(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Teacher-forced features (B, T, M) and attention weights (B, T, S)."""
        annotations, mask, s0 = self._encode(batch.src, batch.src_len)
        return self.decoder.features(batch.tgt_in, annotations, mask, s0)

    def features(self, batch: Batch) -> Tensor:
        return self.attention_and_features(batch)[0]

    def summary(self, src: Tensor, src_len: Tensor) -> Tensor:
        """A fixed-size representation (B, 2H) of each source: the mean of its annotations (RNNsearch has no c)."""
        annotations, _ = self.encoder(src, src_len)
        return annotations.sum(1) / src_len.unsqueeze(1).to(annotations.dtype)

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """Initial decoding state for (B, S) sources: s_0, annotations, projected keys and the source mask."""
        annotations, mask, s0 = self._encode(src, src_len)
        return s0, annotations, self.decoder.attention.project_keys(annotations), mask

    def step_logits(self, prev: Tensor, state: State) -> tuple[Tensor, State]:
        """Unnormalised scores (B, V) of the next token after ``prev`` (B,), and the new state."""
        logits, state, _ = self.decoder.step(prev, state)
        return logits, state
