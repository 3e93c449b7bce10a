"""The RNNsearch decoder's search step with the context's products moved onto the annotations.

The context c_i = sum_j alpha_ij h_j enters the decoder only through linear maps: the GRU's input weights
(``W_c c_i`` of ``W [e; c]``) and the readout's ``C_o c_i``. So ``W c_i = sum_j alpha_ij (W h_j)``: the products
``W h_j`` (the state's ``values``, 3H + M*P columns) are taken once per source sentence, and each step mixes S of
them instead of multiplying a 2H-wide context by 3H + M*P weights, which was a third of a step's arithmetic
(Multi30k sentences have about 13 source pieces against 2H = 1,024). The GRU's gates are then written out (torch's
``GRUCell``, whose input product cannot be handed over): r and z, the candidate n = tanh(W_n x + b_n +
r * (U_n s + b_hn)) and s' = (1 - z) * n + z * s. In a model restricted to the pieces seen in training
(TranslationModel.restrict_output, which only decodes), the previous word's products (``W_e e`` with the GRU's
input bias, and the readout's ``O_y e``) are rows of a table computed once per set of weights, unless that table
would pass TABLE_MAX floats. Only a torch ``GRUCell`` decoder with float weights takes this
path (not an int8 one, an LSTM, an Elman cell or ``model.cell=equations``); the rest run
:meth:`AttentionDecoder.step`. The result equals that step up to float rounding.
Letters: B batch, S source length, E embedding, H hidden, K = 2H annotation size, A alignment units, G = 3H gate
rows, R = M*P readout rows.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.model.decoders import AttentionDecoder, search_out

TABLE_MAX = 1 << 24  # floats (64 MiB) in the previous-word table at most; a larger one is not built


class ProjectedState(NamedTuple):
    """The RNNsearch decoder's state in search when its context products are moved onto the annotations."""

    s: Tensor  # (B, H) decoder state s_{i-1}
    values: Tensor  # (B, S, G + R) [W_c; C_o] h_j for each annotation h_j
    keys: Tensor  # (B, S, A) the attention's U_a h_j
    mask: Tensor  # (B, S) true on real source tokens

    SOURCE_FIELDS = ("values", "keys", "mask")  # fields that depend on the source alone (TranslationModel.reorder)


def can_project(decoder: AttentionDecoder) -> bool:
    """Whether the decoder's step can run as :func:`projected_step`: a torch ``GRUCell`` and float layers."""
    return type(decoder.cell) is nn.GRUCell and type(decoder.readout.from_context) is nn.Linear


def _context_weights(decoder: AttentionDecoder) -> Tensor:
    """(G + R, K): the GRU's input weights on the context, then the readout's C_o."""
    emb_dim = decoder.embed.embedding_dim
    return torch.cat([decoder.cell.weight_ih[:, emb_dim:], decoder.readout.from_context.weight], dim=0)


def _word_weights(decoder: AttentionDecoder) -> tuple[Tensor, Tensor | None]:
    """(G + R, E) the GRU's input weights on the embedding, then the readout's O_y; and the GRU's input bias."""
    emb_dim = decoder.embed.embedding_dim
    return torch.cat([decoder.cell.weight_ih[:, :emb_dim], decoder.readout.from_prev_word.weight]), decoder.cell.bias_ih


def word_table(decoder: AttentionDecoder, pieces: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """The previous-word products of every piece in ``pieces`` (N,): (N, G + R) with the GRU's input bias in
    the first G columns, and the row of each piece id (V,). Cached on the decoder until a weight changes; None
    without ``pieces`` (a model in training, whose weights change at every update) or when the table would be
    larger than TABLE_MAX floats."""
    if pieces is None:
        return None
    params = (decoder.embed.weight, decoder.cell.weight_ih, decoder.cell.bias_ih, decoder.readout.from_prev_word.weight)
    key = (tuple((p.data_ptr(), p._version) for p in params if p is not None), pieces.data_ptr())
    cached = getattr(decoder, "_word_table", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    table, (weights, bias) = None, _word_weights(decoder)  # the weights are concatenated only on a rebuild
    if len(pieces) * weights.shape[0] <= TABLE_MAX:
        rows = decoder.embed(pieces) @ weights.t()
        if bias is not None:
            rows[:, : bias.shape[0]] += bias
        row_of = torch.zeros(decoder.embed.num_embeddings, dtype=torch.long, device=weights.device)
        row_of[pieces] = torch.arange(len(pieces), device=weights.device)
        table = (rows, row_of)
    decoder._word_table = (key, table)
    return table


def start_projected(decoder: AttentionDecoder, annotations: Tensor, bwd_first: Tensor, mask: Tensor
                    ) -> ProjectedState:
    """The state before the first target word (see ``AttentionDecoder.start``), with ``values`` (B, S, G + R)."""
    start = decoder.start(annotations, bwd_first, mask)
    return ProjectedState(start.s, annotations @ _context_weights(decoder).t(), start.keys, mask)


def projected_step(decoder: AttentionDecoder, prev: Tensor, state: ProjectedState, pieces: Tensor | None = None
                   ) -> tuple[Tensor, ProjectedState, Tensor]:
    """Logits (B, V) of the word after ``prev`` (B,), the new state, and the attention weights (B, S):
    ``AttentionDecoder.step`` reassociated. ``pieces``: the only pieces ``prev`` can be (the model's
    ``output_ids``), for the previous-word table."""
    cell, gates, s = decoder.cell, 3 * decoder.hidden_dim, state.s  # s: (B, H)
    alpha = decoder.attention.weights(s, state.keys, state.mask)  # (B, S)
    mixed = torch.bmm(alpha.unsqueeze(1), state.values).squeeze(1)  # (B, G + R) = [W_c; C_o] c_i
    table = word_table(decoder, pieces)
    if table is not None:
        mixed = mixed + table[0][table[1][prev]]  # + [W_e; O_y] e(y_{i-1}) + [b_ih; 0]
    else:
        weights, bias = _word_weights(decoder)
        mixed = torch.addmm(mixed, decoder.embed(prev), weights.t())
        if bias is not None:
            mixed[:, :gates] += bias
    logits = search_out(decoder)(decoder.readout.maxout(decoder.readout.from_state(s) + mixed[:, gates:]))
    gi = mixed[:, :gates]
    gh = F.linear(s, cell.weight_hh, cell.bias_hh)
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return logits, state._replace(s=n + z * (s - n)), alpha
