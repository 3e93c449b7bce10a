"""Word alignments from attention (``decode.alignment=hard|soft``), for tag and markup transfer: the attention
weights of a translation's target pieces over its source pieces (teacher-forced on the translation found, which
is what the search computed along its path), merged into whitespace words on both sides.

A word begins at a piece that starts with sentencepiece's word-start mark "▁" (or at the first piece). The weight
of target word w on source word v is the mean, over w's pieces, of their weights summed over v's pieces: each
row still sums to 1. *Hard*: each target word to the source word with the most weight, as Moses ``i-j`` pairs
(source index, target index, from 0). *Soft*: the word-level matrix, one row per target word.
Letters: T target pieces, S source pieces, W target words, U source words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

WORD_START = "\u2581"


def word_of_piece(pieces: Sequence[str]) -> list[int]:
    """The word index of each piece: a new word at each piece with the word-start mark."""
    words, index = [], -1
    for i, piece in enumerate(pieces):
        if i == 0 or piece.startswith(WORD_START):
            index += 1
        words.append(index)
    return words


def words(pieces: Sequence[str]) -> list[str]:
    """The whitespace words the pieces make (as :func:`word_of_piece` groups them)."""
    out: list[str] = []
    for piece, w in zip(pieces, word_of_piece(pieces), strict=True):
        if w == len(out):
            out.append("")
        out[w] += piece
    return [w.replace(WORD_START, "") for w in out]


def word_matrix(weights: Tensor, src_pieces: Sequence[str], tgt_pieces: Sequence[str]) -> Tensor:
    """(W, U) word weights from piece weights (T, S) (rows: target pieces without EOS; each row sums to 1)."""
    src, tgt = word_of_piece(src_pieces), word_of_piece(tgt_pieces)
    if not tgt:
        return weights.new_zeros(0, max(src, default=-1) + 1)
    to_src = torch.zeros(len(src), src[-1] + 1, dtype=weights.dtype)
    to_src[torch.arange(len(src)), torch.tensor(src)] = 1.0
    to_tgt = torch.zeros(tgt[-1] + 1, len(tgt), dtype=weights.dtype)
    to_tgt[torch.tensor(tgt), torch.arange(len(tgt))] = 1.0
    to_tgt /= to_tgt.sum(1, keepdim=True)  # the mean over a word's pieces
    return to_tgt @ weights.cpu() @ to_src


def hard(matrix: Tensor) -> list[tuple[int, int]]:
    """(source word, target word) pairs: each target word to its heaviest source word."""
    return [(int(v), w) for w, v in enumerate(matrix.argmax(1).tolist())] if matrix.numel() else []


def moses(pairs: Sequence[tuple[int, int]]) -> str:
    """``0-0 1-2 ...``: Moses' alignment format."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


def soft(matrix: Tensor) -> str:
    """One row per target word, its weights over the source words comma-separated, rows space-separated."""
    return " ".join(",".join(f"{w:.3f}" for w in row) for row in matrix.tolist())
