"""The two encoders: Cho et al. (2014)'s, which squeezes the source into one summary vector c, and
RNNsearch's bidirectional one (Bahdanau et al. 2015), which keeps an annotation per source token.

Letters: B batch, S source length, E embedding, H hidden units (per direction).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.choices import Cell, CellType
from nmt.data.tokenizer import PAD
from nmt.model.rnn import hidden, make_rnn, run_rnn


def _check_source(src: Tensor, src_len: Tensor) -> None:
    assert src.dim() == 2 and src_len.shape == src.shape[:1], f"src {tuple(src.shape)}, len {tuple(src_len.shape)}"


class SummaryEncoder(nn.Module):
    """Embedding + recurrent layer (a GRU in the paper) + the summary ``c = tanh(V h_N)`` (Cho et al. 2014,
    section 2.2 and appendix A.1.1).

    :param vocab_size: source vocabulary. :param emb_dim: E. :param hidden_dim: H.
    :param reverse: read each source right to left (Sutskever et al. 2014).
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, *, dropout: float, cell_type: CellType,
                 cell: Cell, reset_after: bool, reverse: bool = False) -> None:
        super().__init__()
        self.reverse, self.hidden_dim = reverse, hidden_dim
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(emb_dim, hidden_dim, cell_type=cell_type, cell=cell, reset_after=reset_after)
        self.to_summary = nn.Linear(hidden_dim, hidden_dim)  # V

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        """:param src: (B, S) ids. :param src_len: (B,) real lengths (>= 1).

        :return: the GRU states (B, S, H) (zeros on padding) and the summary c (B, H).
        """
        _check_source(src, src_len)
        if self.reverse:
            src = reverse_padded(src, src_len)
        states, last = run_rnn(self.rnn, self.dropout(self.embed(src)), None, src_len)
        return states, torch.tanh(self.to_summary(hidden(last, self.hidden_dim)))


class BiEncoder(nn.Module):
    """Embedding + bidirectional recurrent layer (a GRU in the paper; Bahdanau et al. 2015, section 3.2): the
    annotation of token j is ``h_j = [forward h_j; backward h_j]``.

    :param vocab_size: source vocabulary. :param emb_dim: E. :param hidden_dim: H per direction.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, *, dropout: float, cell_type: CellType,
                 cell: Cell, reset_after: bool) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(emb_dim, hidden_dim, cell_type=cell_type, cell=cell, reset_after=reset_after,
                            bidirectional=True)

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        """:param src: (B, S) ids. :param src_len: (B,) real lengths (>= 1).

        :return: annotations (B, S, 2H) (zeros on padding) and the backward state at the first token (B, H).
        """
        _check_source(src, src_len)
        annotations, last = run_rnn(self.rnn, self.dropout(self.embed(src)), None, src_len)
        return annotations, hidden(last, self.hidden_dim)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` entries, leaving the padding after them: (B, S) -> (B, S)."""
    pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, S)
    idx = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)
    return x.gather(1, idx)
