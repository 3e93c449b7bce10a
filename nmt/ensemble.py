"""Ensembles of trained models: at every decoding step the members' log-probabilities are averaged and
renormalised (a normalised geometric mean of their distributions, as Nematus and Marian combine members), in
greedy and beam search and in scoring. Members may differ in architecture; they share the tokenizer.

``checkpoint=[runs/a,runs/b]`` on the command line of translate, evaluate and score builds one.
Letters: B batch, T target length, V target vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.base import TranslationModel


class Ensemble(nn.Module):
    """The search interface of :class:`~nmt.model.base.TranslationModel` over several members."""

    def __init__(self, members: list[TranslationModel]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def encode(self, src: Tensor, src_len: Tensor) -> tuple:
        """Each member's initial state, as one tuple."""
        return tuple(m.encode(src, src_len) for m in self.members)

    def step(self, prev: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """The averaged, renormalised log-probabilities (B, V) of the next token, and every member's new state."""
        steps = [m.step(prev, s) for m, s in zip(self.members, state, strict=True)]
        return _combine([logp for logp, _ in steps]), tuple(s for _, s in steps)

    def reorder(self, state: tuple, index: Tensor, same_sources: bool = False) -> tuple:
        return tuple(m.reorder(s, index, same_sources) for m, s in zip(self.members, state, strict=True))

    @torch.no_grad()
    def score(self, batch: Batch) -> Tensor:
        """log p(y|x) of each pair (B,) under the combined distribution, summed over target tokens and EOS."""
        logp = _combine([m.decoder.out(m.features(batch)).log_softmax(-1) for m in self.members])  # (B, T, V)
        tok = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        return (tok * (batch.tgt_out != PAD)).sum(-1)


def _combine(logps: list[Tensor]) -> Tensor:
    """The members' log-probabilities (..., V) averaged and renormalised over V."""
    return logps[0] if len(logps) == 1 else torch.stack(logps).mean(0).log_softmax(-1)
