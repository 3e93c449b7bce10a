"""The contract between search and whatever it decodes with: :class:`Decodable`, written once.

Search (nmt.decoding.search) owns the loop and the hypotheses; a model owns one step. Every model
(nmt.model.base.TranslationModel: both architectures, every cell type, fp32 or int8) and an ensemble of them
(nmt.decoding.ensemble.Ensemble) implement it, and nothing else is asked of them: no type tests, no probing.

A step scores V' *output columns*; ``columns`` (V',) maps each to its target piece id. For a model restricted to
the pieces seen in training (TranslationModel.restrict_output) V' is their number; otherwise the columns are the
whole vocabulary, column j for piece j. Search feeds piece ids back in as ``prev``.
Letters: B batch (rows of the state), S source length, V' output columns.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from nmt.data.batching import Batch

# a decoder state: a NamedTuple of batch-first tensors (or, for an ensemble, a tuple of its members' states)
State = tuple


class Step(NamedTuple):
    """What one decoding step gives."""

    scores: Tensor  # (B, V') log-probabilities of the next piece over the output columns (logits: normalize=False)
    state: State  # the state after the step
    attention: Tensor | None  # (B, S) the attention weights over the source pieces; None for a model without


@runtime_checkable
class Decodable(Protocol):
    """One step at a time over a batch of sources: what greedy, beam search and everything built on them use."""

    @property
    def columns(self) -> Tensor:
        """(V',) the target piece id of each output column of :meth:`step`."""

    @property
    def device(self) -> torch.device:
        """Where the sources must be for :meth:`encode`."""

    @property
    def attends(self) -> bool:
        """Whether :meth:`step` gives attention weights."""

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """The state before the first target piece for (B, S) source ids of lengths (B,)."""

    def step(self, prev: Tensor, state: State, *, normalize: bool = True) -> Step:
        """Scores of the piece after ``prev`` (B,) piece ids. ``normalize=False`` allows unnormalised scores with
        the same order in each row (greedy search takes only the argmax)."""

    def reorder(self, state: State, index: Tensor, same_sources: bool = False) -> State:
        """The state's rows ``index`` (B',), e.g. beams moving. ``same_sources``: each new row i comes from a row
        of the same source sentence as old row i, so fields that depend on the source alone may stay."""


@runtime_checkable
class Scorer(Protocol):
    """log p(y|x) of given pairs (Cho 2014's use of the model): models and ensembles."""

    def score(self, batch: Batch) -> Tensor:
        """(B,) log p(y|x) of each pair, summed over its target pieces and EOS."""
