"""What every search shares: the :class:`Hypothesis` it returns, the model's output columns
(:class:`Columns`) and how finished rows leave the batch (:func:`drop_done`, ``COMPACT_AT``).
Letters: N rows, V' output columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.model.contract import Decodable


@dataclass
class Hypothesis:
    """A translation: ``tokens`` without BOS and EOS; ``logprob`` = log p(tokens + EOS | source), or of the tokens
    alone when the length cap stopped it; ``score`` = logprob / length_penalty(len(tokens) + 1), which ranks
    beam hypotheses. Greedy search takes the argmax of the logits and computes neither (both NaN)."""

    tokens: list[int]
    logprob: float = math.nan
    score: float = math.nan


COMPACT_AT = 0.25  # the share of finished sentences at which they leave the batch (greedy and beam search)


class Columns:
    """A model's output columns (nmt.model.contract): the piece id of each, and which ones search may not pick."""

    def __init__(self, model: Decodable) -> None:
        self.ids = model.columns  # (V',)
        self.never = ((self.ids == PAD) | (self.ids == BOS)).nonzero().squeeze(1)  # PAD and BOS are never output
        self.eos = (self.ids == EOS).nonzero().squeeze(1)

    def mask(self, scores: Tensor, eos_too: bool = False) -> Tensor:
        """(N, V') log-probabilities or logits with PAD and BOS (and EOS while the output is shorter than the
        minimum length) at -inf, in place."""
        scores.index_fill_(1, self.never, float("-inf"))
        if eos_too:
            scores.index_fill_(1, self.eos, float("-inf"))
        return scores


def drop_done(keep: list[int], *tensors: Tensor) -> tuple[Tensor, ...]:
    """How finished sentences leave the batch: the index of the ``keep`` rows, and the given batch-first tensors
    with only those rows (the caller reorders the model state with the index)."""
    index = torch.tensor(keep, device=tensors[0].device)
    return (index, *(t.index_select(0, index) for t in tensors))
