"""The encoder of the RNN Encoder-Decoder (Cho et al. 2014, section 2.2): a GRU reads the source, and
the summary c is computed from its last hidden state."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.data.tokenizer import PAD
from nmt.model.rnn import make_gru, run_gru


class Encoder(nn.Module):
    """Embedding + GRU + summary ``c = tanh(V h_N)`` (appendix A.1.1).

    :param vocab_size: source vocabulary V_s. :param emb_dim: E. :param hidden_dim: H.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, *, dropout: float,
                 cell: str, reset_after: bool, reverse: bool = False) -> None:
        super().__init__()
        self.reverse = reverse
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_gru(emb_dim, hidden_dim, cell=cell, reset_after=reset_after)
        self.summary = nn.Linear(hidden_dim, hidden_dim)  # V

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a padded batch.

        :param src: (B, S) source ids. :param src_len: (B,) real lengths (>= 1).
        :return: states (B, S, H) (zeros on padding) and the summary c (B, H).
        """
        assert src.dim() == 2 and src_len.shape == src.shape[:1], f"src {tuple(src.shape)}, len {tuple(src_len.shape)}"
        if self.reverse:
            src = reverse_padded(src, src_len)
        x = self.dropout(self.embed(src))  # (B, S, E)
        states, h_last = run_gru(self.rnn, x, None, src_len)
        return states, torch.tanh(self.summary(h_last))


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` entries, leaving the padding after them: (B, S) -> (B, S)."""
    pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, S)
    idx = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)
    return x.gather(1, idx)
