"""Language pairs of a multilingual model (``data.pairs``, Johnson et al. 2017, "Google's Multilingual Neural Machine
Translation System", TACL): pair strings ``SRC-TGT``, the target-language tags ``<2xx>`` that begin every source,
and the choice of target language when translating.

A config with ``data.pairs`` empty is a single-pair model (``data.src_lang`` -> ``data.tgt_lang``): no tag, as before.
"""

from __future__ import annotations

import re

from nmt.errors import ConfigValueError, NMTError

MUL = "mul"  # ISO 639-2 "multiple languages": the src_lang / tgt_lang of a side with several languages
UNSET = "???"  # omegaconf.MISSING: a side the config leaves to the pairs
LANG = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a language code: no "-" (it separates the pair) and no spaces


def tag(lang: str) -> str:
    """The sentencepiece symbol that asks for target language ``lang``: ``<2lang>``."""
    return f"<2{lang}>"


def parse_pair(text: str, key: str) -> tuple[str, str]:
    """``"de-en"`` -> ``("de", "en")``; anything else is one line naming ``key``."""
    parts = str(text).split("-")
    if len(parts) != 2 or not all(LANG.fullmatch(p) for p in parts) or parts[0] == parts[1]:
        raise ConfigValueError(f"{key}={text} is not a language pair: write SRC-TGT with two different language "
                               "codes, e.g. de-en")
    return parts[0], parts[1]


def parse_pairs(pairs: list[str], key: str = "data.pairs") -> list[tuple[str, str]]:
    """Every pair of ``data.pairs`` parsed, refusing repeats."""
    parsed = [parse_pair(p, key) for p in pairs]
    repeated = sorted({f"{s}-{t}" for s, t in parsed if parsed.count((s, t)) > 1})
    if repeated:
        raise ConfigValueError(f"{key} names {', '.join(repeated)} more than once")
    return parsed


def side_language(pairs: list[tuple[str, str]], side: int, given: str, key: str) -> str:
    """The ``src_lang`` (``side`` 0) or ``tgt_lang`` (1) that ``pairs`` imply: the side's one language, or ``mul``.
    ``given`` (the config's value) must be ``mul``, unset or one of that side's languages, else it conflicts."""
    langs = sorted({p[side] for p in pairs})
    if given not in (MUL, UNSET, *langs):
        raise ConfigValueError(f"{key}={given} conflicts with data.pairs=[{shown(pairs)}] (its "
                               f"{'sources' if side == 0 else 'targets'}: {', '.join(langs)}): set {key}="
                               f"{langs[0] if len(langs) == 1 else MUL}, or leave data.pairs empty")
    return langs[0] if len(langs) == 1 else MUL


def shown(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{s}-{t}" for s, t in pairs)


def targets(pairs: list[tuple[str, str]]) -> list[str]:
    """The target languages, in the order of their first pair."""
    return list(dict.fromkeys(t for _, t in pairs))


def choose_target(pairs: list[str], src_lang: str, tgt_lang: str, target: str | None) -> str | None:
    """The target language a model (its ``data.pairs``, ``src_lang``, ``tgt_lang``) translates into when asked for
    ``target`` (None: its only one): the language, or None for a single-pair model (no tag). A language the model
    does not have, or none asked of a one-to-many model, is one line naming the model's pairs."""
    parsed = parse_pairs(pairs)
    have = targets(parsed) if parsed else [tgt_lang]
    described = f"pairs {shown(parsed)}" if parsed else f"pair {src_lang}-{tgt_lang}"
    if target is None and len(have) > 1:
        raise NMTError(f"this model translates into {', '.join(have)} ({described}): choose the target language "
                       "(tgt_lang=XX; nmt evaluate: pair=SRC-TGT; Python: target='XX')")
    if target is not None and target not in have:
        raise NMTError(f"this model cannot translate into {target!r}: it has {described}")
    return (target or have[0]) if parsed else None
