"""The decoder of the RNN Encoder-Decoder (Cho et al. 2014, section 2.2 and appendix A.1.1).

Every update sees the previous target word and the summary c; the readout
``s = O_h h'_t + O_y e(y_{t-1}) + O_c c`` goes through a maxout layer into the softmax.
Letters: B batch, T target length, E embedding, H hidden, C summary (= H), M maxout units, V vocab.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.data.tokenizer import PAD
from nmt.model.rnn import make_gru, run_gru


class Decoder(nn.Module):
    """GRU decoder conditioned on c at every step, with a maxout readout.

    :param vocab_size: V. :param emb_dim: E. :param hidden_dim: H (also the size C of c).
    :param maxout_dim: M units after pooling ``maxout_pool`` pieces each.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, maxout_dim: int, maxout_pool: int,
                 *, dropout: float, cell: str, reset_after: bool) -> None:
        super().__init__()
        self.pool = maxout_pool
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.init = nn.Linear(hidden_dim, hidden_dim)  # V': h'_0 = tanh(V' c)
        # c enters the GRU as extra input columns: W [e; c] = W_e e + C c, the paper's C c terms.
        self.rnn = make_gru(emb_dim + hidden_dim, hidden_dim, cell=cell, reset_after=reset_after)
        self.o_h = nn.Linear(hidden_dim, maxout_dim * maxout_pool)
        self.o_y = nn.Linear(emb_dim, maxout_dim * maxout_pool, bias=False)
        self.o_c = nn.Linear(hidden_dim, maxout_dim * maxout_pool, bias=False)
        self.out = nn.Linear(maxout_dim, vocab_size)  # G, then the softmax

    def init_state(self, c: Tensor) -> Tensor:
        """(B, H) initial state from c (B, H)."""
        return torch.tanh(self.init(c))

    def _readout(self, h: Tensor, e: Tensor, oc: Tensor) -> Tensor:
        """Maxout features (..., M) from states h (..., H), embeddings e (..., E) and O_c c (..., M*pool)."""
        s = self.o_h(h) + self.o_y(e) + oc
        s = s.unflatten(-1, (-1, self.pool)).amax(-1)  # maxout: max over each unit's pool
        return self.dropout(s)

    def features(self, tgt_in: Tensor, c: Tensor) -> Tensor:
        """Teacher-forced readout features for every position.

        :param tgt_in: (B, T) BOS + target ids. :param c: (B, H) summary.
        :return: (B, T, M) maxout outputs; ``self.out`` turns them into logits.
        """
        e = self.dropout(self.embed(tgt_in))  # (B, T, E)
        x = torch.cat([e, c.unsqueeze(1).expand(-1, e.shape[1], -1)], dim=-1)
        h, _ = run_gru(self.rnn, x, self.init_state(c))  # (B, T, H); padding at the end changes nothing before it
        return self._readout(h, e, self.o_c(c).unsqueeze(1))

    def step(self, prev: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One decoding step.

        :param prev: (B,) previous target ids. :param h: (B, H) state. :param c: (B, H) summary.
        :return: logits (B, V) and the new state (B, H).
        """
        e = self.embed(prev)  # (B, E)
        _, h = run_gru(self.rnn, torch.cat([e, c], dim=-1).unsqueeze(1), h)
        return self.out(self._readout(h, e, self.o_c(c))), h
