"""The two decoders, both ending in the shared maxout readout (nmt.model.readout) and an output layer.

:class:`SummaryDecoder` (Cho et al. 2014, section 2.2 and appendix A.1.1) starts from the summary c and sees
c and the previous word at every step: ``h'_t = GRU(h'_{t-1}, [e(y_{t-1}); c])``. Its inputs do not depend on
its state, so teacher forcing runs the whole GRU at once.

:class:`AttentionDecoder` (Bahdanau et al. 2015, appendix A.2.2) attends over the annotations at every step::

    s_0 = tanh(W_s backward h_1)
    c_i = attention(s_{i-1}, h)
    t_i = maxout(U_o s_{i-1} + V_o e(y_{i-1}) + C_o c_i)
    s_i = GRU(s_{i-1}, [e(y_{i-1}); c_i])

Letters: B batch, S source length, T target length, E embedding, H hidden, K = 2H annotation size, A alignment
units, M maxout units, V target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.choices import Cell, CellType
from nmt.data.tokenizer import PAD
from nmt.model.attention import AdditiveAttention
from nmt.model.readout import MaxoutReadout
from nmt.model.rnn import cell_step, hidden, make_rnn, make_rnn_cell, run_rnn, start_state


class SummaryState(NamedTuple):
    """The Cho 2014 decoder's state during search."""

    h: Tensor  # (B, H) decoder state ((B, 2H) [h; c] for an LSTM: nmt.model.rnn)
    c: Tensor  # (B, H) the source summary

    SOURCE_FIELDS = ("c",)  # fields that depend on the source sentence alone (TranslationModel.reorder)


class AttentionState(NamedTuple):
    """The RNNsearch decoder's state during search."""

    s: Tensor  # (B, H) decoder state s_{i-1} ((B, 2H) [s; c] for an LSTM: nmt.model.rnn)
    annotations: Tensor  # (B, S, K)
    keys: Tensor  # (B, S, A) the attention's U_a h_j
    mask: Tensor  # (B, S) true on real source tokens

    SOURCE_FIELDS = ("annotations", "keys", "mask")  # fields that depend on the source alone (TranslationModel.reorder)


def search_out(decoder: nn.Module) -> nn.Module:
    """The output layer a search step uses: the restricted copy when there is one, else ``out``."""
    return decoder.out if decoder.out_search is None else decoder.out_search


class SummaryDecoder(nn.Module):
    """:param vocab_size: V. :param emb_dim: E. :param hidden_dim: H (also the size of c).
    :param maxout_dim: M units, each the max of ``maxout_pool`` pieces."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, maxout_dim: int, maxout_pool: int, *,
                 dropout: float, cell_type: CellType, cell: Cell, reset_after: bool) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.bridge = nn.Linear(hidden_dim, hidden_dim)  # V': h'_0 = tanh(V' c)
        # c enters the GRU as extra input columns: W [e; c] = W_e e + C c, the paper's C c terms
        self.rnn = make_rnn(emb_dim + hidden_dim, hidden_dim, cell_type=cell_type, cell=cell, reset_after=reset_after)
        self.readout = MaxoutReadout(hidden_dim, emb_dim, hidden_dim, maxout_dim, maxout_pool, dropout)
        self.out = nn.Linear(maxout_dim, vocab_size)  # G, then the softmax
        self.out_search: nn.Linear | None = None  # rows of out for search only (TranslationModel.restrict_output)

    def start(self, c: Tensor) -> SummaryState:
        """The state before the first target word, from the summary c (B, H)."""
        return SummaryState(start_state(torch.tanh(self.bridge(c)), self.rnn), c)

    def features(self, tgt_in: Tensor, c: Tensor) -> Tensor:
        """Teacher-forced readout features (B, T, M) for BOS + target ids ``tgt_in`` (B, T) and c (B, H).

        Padding at the end of a row changes nothing before it.
        """
        e = self.dropout(self.embed(tgt_in))  # (B, T, E)
        x = torch.cat([e, c.unsqueeze(1).expand(-1, e.shape[1], -1)], dim=-1)
        h, _ = run_rnn(self.rnn, x, self.start(c).h)  # (B, T, H)
        return self.readout(h, e, self.readout.from_context(c).unsqueeze(1))

    def step(self, prev: Tensor, state: SummaryState) -> tuple[Tensor, SummaryState]:
        """Logits (B, V) of the word after ``prev`` (B,), and the new state."""
        e = self.embed(prev)  # (B, E)
        _, h = run_rnn(self.rnn, torch.cat([e, state.c], dim=-1).unsqueeze(1), state.h)
        features = self.readout(hidden(h, self.hidden_dim), e, self.readout.from_context(state.c))
        return search_out(self)(features), SummaryState(h, state.c)


class AttentionDecoder(nn.Module):
    """:param vocab_size: V. :param emb_dim: E. :param hidden_dim: H. :param attn_dim: A.
    :param maxout_dim: M units, each the max of ``maxout_pool`` pieces."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, attn_dim: int, maxout_dim: int,
                 maxout_pool: int, *, dropout: float, cell_type: CellType, cell: Cell, reset_after: bool) -> None:
        super().__init__()
        ctx_dim, self.hidden_dim = 2 * hidden_dim, hidden_dim
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.bridge = nn.Linear(hidden_dim, hidden_dim)  # W_s
        self.attention = AdditiveAttention(hidden_dim, ctx_dim, attn_dim)
        self.cell = make_rnn_cell(emb_dim + ctx_dim, hidden_dim, cell_type=cell_type, cell=cell,
                                  reset_after=reset_after)
        self.readout = MaxoutReadout(hidden_dim, emb_dim, ctx_dim, maxout_dim, maxout_pool, dropout)
        self.out = nn.Linear(maxout_dim, vocab_size)  # W_o, then the softmax
        self.out_search: nn.Linear | None = None  # rows of out for search only (TranslationModel.restrict_output)

    def start(self, annotations: Tensor, bwd_first: Tensor, mask: Tensor) -> AttentionState:
        """The state before the first target word: s_0 from the backward state at the first source token
        (B, H), with the annotations (B, S, K), their projected keys and the source mask (B, S)."""
        keys = self.attention.project_keys(annotations)
        return AttentionState(start_state(torch.tanh(self.bridge(bwd_first)), self.cell), annotations, keys, mask)

    def features(self, tgt_in: Tensor, start: AttentionState) -> tuple[Tensor, Tensor]:
        """Teacher-forced readout features (B, T, M) and attention weights (B, T, S) for BOS + target ids
        ``tgt_in`` (B, T): the attention query depends on the previous state, so one step at a time."""
        e = self.dropout(self.embed(tgt_in))  # (B, T, E)
        s, states, contexts, weights = start.s, [], [], []
        for t in range(e.shape[1]):
            query = hidden(s, self.hidden_dim)
            ctx, alpha = self.attention(query, start.keys, start.annotations, start.mask)
            states.append(query)
            contexts.append(ctx)
            weights.append(alpha)
            if t < e.shape[1] - 1:  # the last step's new state is never used
                s = cell_step(self.cell, torch.cat([e[:, t], ctx], dim=-1), s)
        ctx = torch.stack(contexts, 1)
        return self.readout(torch.stack(states, 1), e, self.readout.from_context(ctx)), torch.stack(weights, 1)

    def step(self, prev: Tensor, state: AttentionState) -> tuple[Tensor, AttentionState, Tensor]:
        """Logits (B, V) of the word after ``prev`` (B,), the new state, and the attention weights (B, S)."""
        e, query = self.embed(prev), hidden(state.s, self.hidden_dim)
        ctx, alpha = self.attention(query, state.keys, state.annotations, state.mask)
        logits = search_out(self)(self.readout(query, e, self.readout.from_context(ctx)))
        return logits, state._replace(s=cell_step(self.cell, torch.cat([e, ctx], dim=-1), state.s)), alpha
