"""The maxout readout both decoders share (Cho et al. 2014, appendix A.1.1; Bahdanau et al. 2015, A.2.2).

``t = O_h h + O_y e(y_{t-1}) + O_c c``, then each of M units keeps the max of its ``pool`` pieces, and the
output layer (the decoder's ``out``) turns t into logits. h is the decoder state the paper names (h'_t in
Cho 2014, s_{i-1} in RNNsearch) and c the context (the summary c, or the attention's c_i).
Letters: H state, E embedding, C context, M maxout units, P pool.
"""

from __future__ import annotations

from torch import Tensor, nn


class MaxoutReadout(nn.Module):
    """:param state_dim: H. :param emb_dim: E. :param context_dim: C. :param units: M. :param pool: P.
    :param dropout: on the maxout output."""

    def __init__(self, state_dim: int, emb_dim: int, context_dim: int, units: int, pool: int, dropout: float) -> None:
        super().__init__()
        self.pool = pool
        self.from_state = nn.Linear(state_dim, units * pool)  # O_h (U_o in RNNsearch), with the bias
        self.from_prev_word = nn.Linear(emb_dim, units * pool, bias=False)  # O_y (V_o)
        self.from_context = nn.Linear(context_dim, units * pool, bias=False)  # O_c (C_o)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, e: Tensor, context_term: Tensor) -> Tensor:
        """Maxout features (..., M) from states h (..., H), previous-word embeddings e (..., E) and
        ``context_term`` = ``from_context(c)`` (..., M*P), which a caller may compute once for every step."""
        return self.maxout(self.from_state(h) + self.from_prev_word(e) + context_term)

    def maxout(self, t: Tensor) -> Tensor:
        """(..., M) from the summed terms t (..., M*P): the max of each unit's P pieces, then dropout."""
        return self.dropout(t.unflatten(-1, (-1, self.pool)).amax(-1))
