"""Subword regularisation: one sentence's segmentation sampled with nmt's own random generator, so that the run's
seed fixes it. Sentencepiece's own sampling (``encode(enable_sampling=True)``) draws from absl::BitGen, which absl
salts per process: the same ``set_random_generator_seed`` gives other pieces in another process, so a resumed run
could not repeat its epoch.

- BPE models: BPE-dropout (Provilkov et al. 2020), sentencepiece's merge loop (bpe_model.cc) with each merge
  skipped with probability alpha; alpha=0 gives exactly ``encode``.
- unigram models: the l-best sampling of Kudo (2018): one of the ``nbest`` best segmentations x, drawn
  with probability proportional to P(x)^alpha.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

import numpy as np
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

from nmt.errors import NMTError

UNK_PENALTY = 10.0  # sentencepiece's kUnkPenalty: an unknown piece scores this below the lowest piece


class BpeDropout:
    """BPE-dropout over a sentencepiece BPE model: the pieces ``encode`` would merge, each merge dropped with
    probability ``alpha``. Models with user-defined, unused or byte pieces (nmt never trains them) are refused."""

    name = "BPE-dropout"

    def __init__(self, sp: spm.SentencePieceProcessor, proto: model_pb2.ModelProto) -> None:
        kinds = {p.type for p in proto.pieces}
        odd = kinds & {model_pb2.ModelProto.SentencePiece.USER_DEFINED, model_pb2.ModelProto.SentencePiece.UNUSED,
                       model_pb2.ModelProto.SentencePiece.BYTE}
        if odd or proto.trainer_spec.byte_fallback:
            raise NMTError("data.spm_alpha: this sentencepiece model has user-defined, unused or byte pieces, "
                           "which BPE-dropout does not handle; train a plain bpe model or set data.spm_alpha=0")
        self.sp, self.unk = sp, sp.unk_id()
        self.pieces = {sp.id_to_piece(i): (i, sp.get_score(i)) for i in range(sp.get_piece_size())
                       if not (sp.is_control(i) or sp.is_unknown(i))}

    def __call__(self, text: str, alpha: float, rng: random.Random) -> list[int]:
        symbols = list(self.sp.normalize(text))  # one symbol per character, as sentencepiece starts
        if not symbols:
            return []
        nxt = [*range(1, len(symbols)), -1]
        prv = list(range(-1, len(symbols) - 1))
        pairs = (self._entry(symbols, left, left + 1) for left in range(len(symbols) - 1))
        agenda = [entry for entry in pairs if entry is not None]
        heapq.heapify(agenda)
        while agenda:
            _, left, right, size = heapq.heappop(agenda)
            if not symbols[left] or not symbols[right] or len(symbols[left]) + len(symbols[right]) != size:
                continue  # stale: one side was merged since
            if alpha > 0 and rng.random() < alpha:
                continue  # dropped: this pair stays apart unless a neighbour's merge offers it again
            symbols[left], symbols[right] = symbols[left] + symbols[right], ""
            nxt[left] = nxt[right]
            if nxt[left] >= 0:
                prv[nxt[left]] = left
            for a, b in ((prv[left], left), (left, nxt[left])):
                if a >= 0 and b >= 0 and (entry := self._entry(symbols, a, b)) is not None:
                    heapq.heappush(agenda, entry)
        return self._ids(symbols, nxt)

    def _entry(self, symbols: list[str], left: int, right: int) -> tuple[float, int, int, int] | None:
        """The agenda entry of merging ``left`` and ``right``: best score first, then the leftmost (as
        sentencepiece's SymbolPairComparator); None when their concatenation is no piece."""
        found = self.pieces.get(symbols[left] + symbols[right])
        return None if found is None else (-found[1], left, right, len(symbols[left]) + len(symbols[right]))

    def _ids(self, symbols: list[str], nxt: list[int]) -> list[int]:
        """The merged symbols as ids; characters outside the vocabulary are UNK, consecutive ones one UNK (as
        sentencepiece's encode)."""
        out: list[int] = []
        i = 0
        while i != -1:
            found = self.pieces.get(symbols[i])
            pid = found[0] if found is not None else self.unk
            if not (pid == self.unk and out and out[-1] == self.unk):
                out.append(pid)
            i = nxt[i]
        return out


class NBestSampling:
    """Kudo's l-best sampling over a unigram model: P(x_i) ∝ P(x_i)^alpha over the ``nbest`` best segmentations,
    scored as sentencepiece scores them (the sum of the pieces' log probabilities)."""

    name = "l-best sampling"

    def __init__(self, sp: spm.SentencePieceProcessor, nbest: int) -> None:
        self.sp, self.nbest = sp, nbest
        self.scores = np.array([sp.get_score(i) for i in range(sp.get_piece_size())], dtype=np.float64)
        self.scores[sp.unk_id()] = self.scores.min() - UNK_PENALTY

    def __call__(self, text: str, alpha: float, rng: random.Random) -> list[int]:
        candidates = self.sp.nbest_encode(text, nbest_size=self.nbest)
        if len(candidates) <= 1:
            return list(candidates[0]) if candidates else []
        logits = alpha * np.array([self.scores[c].sum() for c in candidates])
        weights = np.exp(logits - logits.max())
        pick = int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))
        return list(candidates[min(pick, len(candidates) - 1)])


Segmenter = BpeDropout | NBestSampling  # called as (text, alpha, rng) -> the sampled piece ids


def segmenter(model: bytes, nbest: int) -> Segmenter:
    """The sampler for a serialized sentencepiece model: BPE-dropout (bpe) or l-best sampling (unigram)."""
    proto = model_pb2.ModelProto.FromString(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    kind = proto.trainer_spec.model_type
    if kind == model_pb2.TrainerSpec.BPE:
        return BpeDropout(sp, proto)
    if kind == model_pb2.TrainerSpec.UNIGRAM:
        return NBestSampling(sp, nbest)
    name = model_pb2.TrainerSpec.ModelType.Name(kind).lower()
    raise NMTError(f"data.spm_alpha samples bpe and unigram segmentations, not {name} ones: set data.spm_alpha=0")


def sample_all(texts: Sequence[str], segment: Segmenter, alpha: float, rng: random.Random) -> list[list[int]]:
    """Every text's sampled ids, in order (the order fixes which random numbers each text gets)."""
    return [segment(text, alpha, rng) for text in texts]
