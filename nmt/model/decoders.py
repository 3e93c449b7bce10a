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
from nmt.model.rnn import (
    cell_step,
    hidden,
    make_rnn,
    make_rnn_cell,
    run_rnn,
    splits_input,
    start_state,
    step_from_input,
)


class SummaryState(NamedTuple):
    """The Cho 2014 decoder's state during search."""

    h: Tensor  # (B, H) decoder state ((B, 2H) [h; c] for an LSTM: nmt.model.rnn)
    c: Tensor  # (B, H) the source summary

    SOURCE_FIELDS = ("c",)  # fields that depend on the source sentence alone (TranslationModel.reorder)


class AttentionState(NamedTuple):
    """The RNNsearch decoder's state during search."""

    s: Tensor  # (B, H) decoder state s_{i-1} ((B, 2H) [s; c] for an LSTM: nmt.model.rnn)
    values: Tensor  # (B, S, X) what a step mixes with the attention weights: AttentionDecoder.context_values
    keys: Tensor  # (B, S, A) the attention's U_a h_j
    mask: Tensor  # (B, S) true on real source tokens

    SOURCE_FIELDS = ("values", "keys", "mask")  # fields that depend on the source alone (TranslationModel.reorder)


TABLE_MAX = 1 << 24  # floats (64 MiB) in the previous-word table at most; a larger one is not built


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

    def prepare_search(self, out_search: nn.Linear | None, pieces: Tensor | None) -> None:
        """Search with the output layer ``out_search`` over ``pieces`` only (None: the whole ``out``)."""
        self.out_search = out_search

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

    def step(self, prev: Tensor, state: SummaryState) -> tuple[Tensor, SummaryState, None]:
        """Logits (B, V) of the word after ``prev`` (B,), the new state, and no attention."""
        e = self.embed(prev)  # (B, E)
        _, h = run_rnn(self.rnn, torch.cat([e, state.c], dim=-1).unsqueeze(1), state.h)
        features = self.readout(hidden(h, self.hidden_dim), e, self.readout.from_context(state.c))
        return search_out(self)(features), SummaryState(h, state.c), None


class AttentionDecoder(nn.Module):
    """:param vocab_size: V. :param emb_dim: E. :param hidden_dim: H. :param attn_dim: A.
    :param maxout_dim: M units, each the max of ``maxout_pool`` pieces.

    Search steps with the context's products moved onto the annotations (:meth:`step`); the previous word's
    products come from a table of the seen pieces once :meth:`prepare_search` has built one.
    """

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
        # the previous-word products of the pieces search can emit (prepare_search): (N, G*H + M*P) rows
        # [W_e; O_y] e(piece) with the cell's input bias in the first G*H columns, and the row of each piece id (V,)
        self.register_buffer("word_rows", None, persistent=False)
        self.register_buffer("word_row_of", None, persistent=False)

    def initial(self, annotations: Tensor, bwd_first: Tensor) -> tuple[Tensor, Tensor]:
        """s_0 from the backward state at the first source token (B, H), and the keys U_a h_j (B, S, A) of the
        annotations (B, S, K)."""
        return start_state(torch.tanh(self.bridge(bwd_first)), self.cell), self.attention.project_keys(annotations)

    def features(self, tgt_in: Tensor, annotations: Tensor, bwd_first: Tensor, mask: Tensor
                 ) -> tuple[Tensor, Tensor]:
        """Teacher-forced readout features (B, T, M) and attention weights (B, T, S) for BOS + target ids
        ``tgt_in`` (B, T), annotations (B, S, K) and mask (B, S): the attention query depends on the previous
        state, so one step at a time."""
        e = self.dropout(self.embed(tgt_in))  # (B, T, E)
        s, keys = self.initial(annotations, bwd_first)
        states, contexts, weights = [], [], []
        for t in range(e.shape[1]):
            query = hidden(s, self.hidden_dim)
            ctx, alpha = self.attention(query, keys, annotations, mask)
            states.append(query)
            contexts.append(ctx)
            weights.append(alpha)
            if t < e.shape[1] - 1:  # the last step's new state is never used
                s = cell_step(self.cell, torch.cat([e[:, t], ctx], dim=-1), s)
        ctx = torch.stack(contexts, 1)
        return self.readout(torch.stack(states, 1), e, self.readout.from_context(ctx)), torch.stack(weights, 1)

    def context_values(self, annotations: Tensor) -> Tensor:
        """What a step mixes with the attention weights (B, S, X), from the annotations h_j (B, S, K).

        The context c_i = sum_j alpha_ij h_j enters the step only through linear maps (the cell's W_c of
        W [e; c] and the readout's C_o), so W c_i = sum_j alpha_ij (W h_j): the products [W_c; C_o] h_j
        (X = G*H + M*P) are taken once per sentence, and a step mixes S of them instead of multiplying a 2H-wide
        context. An int8 cell takes its input whole: then X = K, the annotations themselves."""
        if not splits_input(self.cell):
            return annotations
        emb_dim = self.embed.embedding_dim
        return annotations @ torch.cat([self.cell.weight_ih[:, emb_dim:], self.readout.from_context.weight]).t()

    def start(self, annotations: Tensor, bwd_first: Tensor, mask: Tensor) -> AttentionState:
        """The search state before the first target word (see :meth:`initial` and :meth:`context_values`)."""
        s, keys = self.initial(annotations, bwd_first)
        return AttentionState(s, self.context_values(annotations), keys, mask)

    def step(self, prev: Tensor, state: AttentionState) -> tuple[Tensor, AttentionState, Tensor]:
        """Logits (B, V) of the word after ``prev`` (B,), the new state, and the attention weights (B, S)."""
        query = hidden(state.s, self.hidden_dim)
        alpha = self.attention.weights(query, state.keys, state.mask)  # (B, S)
        mixed = torch.bmm(alpha.unsqueeze(1), state.values).squeeze(1)  # (B, X)
        if not splits_input(self.cell):  # mixed is c_i
            e = self.embed(prev)
            logits = search_out(self)(self.readout(query, e, self.readout.from_context(mixed)))
            return logits, state._replace(s=cell_step(self.cell, torch.cat([e, mixed], dim=-1), state.s)), alpha
        gates = self.cell.weight_ih.shape[0]  # G*H rows of the cell's input product (G = 3 GRU, 4 LSTM, 1 Elman)
        mixed = self._add_word_products(prev, mixed)  # + [W_e; O_y] e(y_{i-1}) + [b_ih; 0]
        logits = search_out(self)(self.readout.maxout(self.readout.from_state(query) + mixed[:, gates:]))
        return logits, state._replace(s=step_from_input(self.cell, mixed[:, :gates], state.s)), alpha

    def _word_weights(self) -> tuple[Tensor, Tensor | None]:
        """(G*H + M*P, E): the cell's input weights on the embedding, then the readout's O_y; the cell's b_ih."""
        emb_dim = self.embed.embedding_dim
        weights = torch.cat([self.cell.weight_ih[:, :emb_dim], self.readout.from_prev_word.weight])
        return weights, self.cell.bias_ih

    def _add_word_products(self, prev: Tensor, mixed: Tensor) -> Tensor:
        """``mixed`` (B, G*H + M*P) plus the previous word's products, from the table when there is one."""
        if self.word_rows is not None:
            return mixed + self.word_rows[self.word_row_of[prev]]
        weights, bias = self._word_weights()
        mixed = torch.addmm(mixed, self.embed(prev), weights.t())
        if bias is not None:
            mixed[:, : bias.shape[0]] += bias
        return mixed

    def prepare_search(self, out_search: nn.Linear | None, pieces: Tensor | None) -> None:
        """Search with the output layer ``out_search`` over ``pieces`` (N,) only (None: the whole ``out``), and
        the previous-word products of those pieces in a table, unless it would pass TABLE_MAX floats. For a
        model whose weights are final (it only decodes): the table is not rebuilt when a weight changes."""
        self.out_search, self.word_rows, self.word_row_of = out_search, None, None
        if pieces is None or not splits_input(self.cell):
            return
        weights, bias = self._word_weights()
        if len(pieces) * weights.shape[0] > TABLE_MAX:
            return
        with torch.no_grad():
            rows = self.embed(pieces) @ weights.t()
            if bias is not None:
                rows[:, : bias.shape[0]] += bias
            row_of = torch.zeros(self.embed.num_embeddings, dtype=torch.long, device=weights.device)
            row_of[pieces] = torch.arange(len(pieces), device=weights.device)
        self.word_rows, self.word_row_of = rows, row_of
