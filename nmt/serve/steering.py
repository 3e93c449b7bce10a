"""How a request steers the search, for every route that translates: its decoding method and sampling settings,
the start each translation must take (``prefix``) and the phrases each must hold (``constraints``, ``glossary``).
Checked before anything is searched or charged: a refusal is a 400 (fields that do not go together) or a 422 (a
field's value), and names the field."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException

from nmt.choices import DecodeMethod
from nmt.config import DecodeConfig
from nmt.decoding.terms import Glossary, sentence_terms
from nmt.errors import ConfigValueError
from nmt.serve.schemas import Search

SAMPLING = ("temperature", "topk", "topp", "seed")  # the fields that only sampling reads


@dataclass(frozen=True)
class Steering:
    """A request's sentences searched as ``dc`` says; ``prefixes``: one start per sentence ("" none) or None;
    ``terms``: the phrases each translation must hold, or None."""

    dc: DecodeConfig
    prefixes: list[str] | None = None
    terms: list[list[str]] | None = None


def steer(default: DecodeConfig, search: Search, lines: list[str], *, prefix: str | list[str] | None = None,
          constraints: list[str] | list[list[str]] | None = None, glossary: dict[str, str] | None = None,
          one: bool = True, n_best: int = 1) -> Steering:
    """``lines`` searched as the request's fields say, on the server's ``default`` setting; ``one``: the request
    gave one sentence (a string), so its ``constraints`` may be one list of phrases and its ``prefix`` a string."""
    prefixes = _prefixes(prefix, len(lines))
    started = prefixes is not None and any(p.strip() for p in prefixes)
    terms = _phrases(lines, constraints, glossary, one)
    if started and terms is not None:
        raise HTTPException(400, "prefix: constraints and glossary do not combine with a prefix")
    return Steering(decoding(default, search, n_best, held=terms is not None, started=started),
                    prefixes if started else None, terms)


def decoding(default: DecodeConfig, search: Search, n_best: int = 1, *, held: bool = False,
             started: bool = False) -> DecodeConfig:
    """The server's decoding setting with the request's choices: beam search for constraints or a glossary
    (``held``) and for an n-best list of a greedy setting; ``n_best`` samples of a sampling one."""
    method = DecodeMethod(search.method) if search.method else default.method
    if held:
        if search.method in ("greedy", "sample"):
            raise HTTPException(400, f"method: constraints and glossary need beam search, not method={search.method}"
                                     " (leave method out, or ask for beam)")
        method = DecodeMethod.beam
    if started and method == DecodeMethod.sample:
        raise HTTPException(400, "prefix: a target prefix works with greedy and beam search, not method=sample")
    if n_best > 1 and method == DecodeMethod.greedy:
        method = DecodeMethod.beam  # an n-best list needs a beam, as in nmt translate
    given = {k: getattr(search, k) for k in SAMPLING if getattr(search, k) is not None}
    if given and method != DecodeMethod.sample:
        raise HTTPException(422, f"{', '.join(given)}: sampling settings, for method=sample; this request is "
                                 f"searched with method={method.value}")
    if search.beam is not None and method == DecodeMethod.sample:
        raise HTTPException(422, "beam: a beam size is for beam search, not method=sample")
    size = search.beam or (default.beam if default.method == DecodeMethod.beam else 5)
    try:
        return DecodeConfig(**{**vars(default), **given, "method": method, "beam": max(size, n_best),
                               "n_best": n_best})
    except ConfigValueError as err:  # a combination only DecodeConfig knows to refuse
        raise HTTPException(422, str(err)) from None


def _prefixes(prefix: str | list[str] | None, n: int) -> list[str] | None:
    """One prefix per sentence, or None."""
    if prefix is None:
        return None
    prefixes = [prefix] if isinstance(prefix, str) else prefix
    if len(prefixes) != n:
        raise HTTPException(422, f"prefix: {len(prefixes)} prefixes for {n} sentences (one per q)")
    return prefixes


def _phrases(lines: list[str], constraints: list[str] | list[list[str]] | None, glossary: dict[str, str] | None,
             one: bool) -> list[list[str]] | None:
    """The phrases each line's translation must hold (its constraints, then the glossary's terms), or None."""
    given = constraints
    if given is not None and one and all(isinstance(c, str) for c in given):
        given = [given]  # one sentence: its list of phrases
    if given is not None and (len(given) != len(lines) or not all(isinstance(c, list) for c in given)):
        raise HTTPException(422, f"constraints: give a list of phrases for each of the {len(lines)} sentences")
    return sentence_terms(lines, given, _glossary(glossary))  # type: ignore[arg-type]


def _glossary(pairs: dict[str, str] | None) -> Glossary | None:
    """The request's glossary; an empty term is refused (an empty source term would match everywhere)."""
    if not pairs:
        return None
    for source, target in pairs.items():
        if not source.strip() or not target.strip():
            raise HTTPException(422, f"glossary: {source!r} -> {target!r}: both terms must be non-empty")
    return Glossary({s.strip(): t.strip() for s, t in pairs.items()})
