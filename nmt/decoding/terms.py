"""Terminology for constrained decoding: per-sentence constraints (target phrases that must appear) and a
glossary (source term -> target term, applied where the source term occurs), as plain data for
nmt.decoding.constrained."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.data.load import existing_file, read_lines
from nmt.errors import NMTError


@dataclass(frozen=True)
class Term:
    """A target phrase that must appear ``times`` times in a translation: its text and target piece ids."""

    text: str
    pieces: tuple[int, ...]
    times: int = 1


class Glossary:
    """Source term -> target term pairs, read from a TSV file (``source<TAB>target`` a line; ``#`` comments).
    A source term matches as whole words, case-sensitively; longer terms win over the shorter ones inside them."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = pairs
        alternatives = "|".join(re.escape(s) for s in sorted(pairs, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if pairs else None

    @classmethod
    def read(cls, path: str | Path) -> Glossary:
        """The glossary in ``path``; a malformed or contradictory line is named by number."""
        file = existing_file(str(path), "glossary")
        pairs: dict[str, str] = {}
        seen: dict[str, int] = {}
        for number, line in enumerate(read_lines(file), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 2 or not all(fields):
                raise NMTError(f"{file}:{number}: a glossary line is 'source term<TAB>target term', got {line!r}")
            source, target = fields
            if source in pairs and pairs[source] != target:
                raise NMTError(f"{file}:{number}: source term {source!r} has two targets (see line {seen[source]})")
            pairs[source], seen[source] = target, number
        if not pairs:
            raise NMTError(f"{file}: the glossary has no entries")
        return cls(pairs)

    def apply(self, line: str) -> list[str]:
        """The target terms a source line calls for: one per occurrence of a source term."""
        if self.pattern is None:
            return []
        return [self.pairs[m.group(0)] for m in self.pattern.finditer(line)]


def constraint_line(line: str) -> list[str]:
    """The constraints of one line of a ``constraints=`` file: target phrases separated by tabs ("" none)."""
    return [c.strip() for c in line.split("\t") if c.strip()]


def sentence_terms(lines: Sequence[str], constraints: Sequence[Sequence[str]] | None,
                   glossary: Glossary | None) -> list[list[str]] | None:
    """Per source line, the target phrases its translation must hold: its constraints, then the glossary's
    terms for it; None when neither is given."""
    if constraints is None and glossary is None:
        return None
    if constraints is not None and len(constraints) != len(lines):
        raise NMTError(f"{len(constraints)} constraint lists for {len(lines)} sentences: give one per sentence "
                       "(empty for none)")
    return [list(constraints[i] if constraints is not None else []) + (glossary.apply(line) if glossary else [])
            for i, line in enumerate(lines)]


def encode_terms(phrases: Sequence[Sequence[str]], encode: Callable[[list[str]], list[list[int]]]) -> list[list[Term]]:
    """Per sentence, its phrases as :class:`Term` (a phrase asked for twice must appear twice); ``encode``: the
    target tokenizer (a list of texts -> a list of piece id lists)."""
    out = []
    for texts in phrases:
        counts = Counter(t.strip() for t in texts if t.strip())
        ids = encode(list(counts)) if counts else []
        out.append([Term(text, tuple(p), n) for (text, n), p in zip(counts.items(), ids, strict=True) if p])
    return out


def word_glue(pieces: Sequence[str]) -> list[int]:
    """The ids of the pieces (a sentencepiece vocabulary, in id order) that continue a word: no word-start mark
    and a letter or digit first. A constraint ends a word, so none of them may follow it."""
    return [i for i, p in enumerate(pieces) if p and not p.startswith("\u2581") and p[0].isalnum()]
