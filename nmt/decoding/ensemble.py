"""Ensembles of trained models: at every decoding step the members' log-probabilities are averaged and
renormalised (a normalised geometric mean of their distributions, as Nematus and Marian combine members), in
greedy and beam search and in scoring. Members may differ in architecture; they share the tokenizer, and search
scores the same output columns with each (:func:`restrict_members`: the union of the pieces they saw).

``checkpoint=[runs/a,runs/b]`` on the command line of translate, evaluate, score, serve and plot builds one.
Letters: B batch, S source length, T target length, V target vocabulary, V' output columns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.base import TranslationModel
from nmt.model.contract import Step


class Ensemble(nn.Module):
    """nmt.model.contract.Decodable and Scorer over several members, which score the same output columns."""

    def __init__(self, members: list[TranslationModel]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        first = members[0].columns
        if any(not torch.equal(m.columns, first) for m in members[1:]):
            raise ValueError("ensemble members must score the same output columns (restrict_members)")

    @property
    def columns(self) -> Tensor:
        return self.members[0].columns

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    @property
    def attends(self) -> bool:
        return any(m.attends for m in self.members)

    def encode(self, src: Tensor, src_len: Tensor) -> tuple:
        """Each member's initial state, as one tuple."""
        return tuple(m.encode(src, src_len) for m in self.members)

    def step(self, prev: Tensor, state: tuple, *, normalize: bool = True) -> Step:
        """The averaged, renormalised log-probabilities (B, V') of the next piece (whatever ``normalize``: the
        mean needs them), every member's new state, and the mean attention (B, S) of the members that attend."""
        steps = [m.step(prev, s) for m, s in zip(self.members, state, strict=True)]
        weights = [s.attention for s in steps if s.attention is not None]
        attention = torch.stack(weights).mean(0) if weights else None
        return Step(_combine([s.scores for s in steps]), tuple(s.state for s in steps), attention)

    def reorder(self, state: tuple, index: Tensor, same_sources: bool = False) -> tuple:
        return tuple(m.reorder(s, index, same_sources) for m, s in zip(self.members, state, strict=True))

    @torch.no_grad()
    def score(self, batch: Batch) -> Tensor:
        """log p(y|x) of each pair (B,) under the combined distribution, summed over target tokens and EOS."""
        logp = _combine([m.token_logprobs(batch) for m in self.members])  # (B, T, V)
        tok = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        return (tok * (batch.tgt_out != PAD)).sum(-1)


def restrict_members(members: list[TranslationModel], pieces: list[Tensor | None]) -> None:
    """Let every member score the union of the pieces each one saw in training (``pieces``: each member's, or
    None when it does not list them: then all score the whole vocabulary)."""
    union = None if any(p is None for p in pieces) else torch.unique(torch.cat([p.long().cpu() for p in pieces]))
    for m in members:
        m.restrict_output(union)


def _combine(logps: list[Tensor]) -> Tensor:
    """The members' log-probabilities (..., V) averaged and renormalised over V."""
    return logps[0] if len(logps) == 1 else torch.stack(logps).mean(0).log_softmax(-1)
