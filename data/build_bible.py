#!/usr/bin/env python3
"""Build the Spanish-English verse-aligned corpus from Debian's SWORD Bible modules.

Sources (both public domain, packaged in Debian):
  * engWEB2015eb  -- text derived from the World English Bible (package sword-text-web)
  * spaRV1909eb   -- Reina-Valera 1909 (package sword-text-sparv)

Usage:
  python3 data/build_bible.py [OUT_DIR]                       # runs mod2imp itself
  python3 data/build_bible.py --eng eng.imp --spa spa.imp [OUT_DIR]

The .imp files are `mod2imp MODULE` dumps: a `$$$Book ch:v` key line per entry,
followed by the entry's OSIS markup. Output: {train,dev,test}.{es,en}.gz, one verse
per line, UTF-8, NFC, gzip with mtime=0 so that rebuilds are byte-identical.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import math
import re
import statistics
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

Key = tuple[str, int, int]  # (book, chapter, verse)
Pair = tuple[Key, str, str]  # (key, es, en)

ENG_MODULE, SPA_MODULE = "engWEB2015eb", "spaRV1909eb"
HELD_OUT_VERSES = 1000  # target size of dev and of test, in verses

KEY_LINE = re.compile(r"^\$\$\$(.*)$", re.M)
VERSE_KEY = re.compile(r"^(.+) (\d+):(\d+)$")
BOOK_END = re.compile(r'<div\b[^>]*\beID="[^"]*"[^>]*\btype="book"[^>]*/>')  # glossary etc. follow it
DROPPED = re.compile(  # elements removed with their content
    r"<note\b.*?</note>|<title\b(?![^>]*type=\"psalm\")[^>]*>.*?</title>|<speaker\b.*?</speaker>", re.S
)
CLOSING_PUNCT = r"[.,;:!?)\]”’»]"
INLINE_TAG = re.compile(r"</?(?:w|transChange|q|seg|name|hi|foreign|divineName)\b[^>]*>")
ANY_TAG = re.compile(r"<[^>]*>")
SUBSCRIPTION = re.compile(r"^(.*?\bAmén\.)\s+(.*\b(?:escrita|enviada)\b.*)$", re.S | re.I)
UP, LOW = "A-ZÁÉÍÓÚÑÜ", "a-záéíóúñü"
CAPS_RUN = re.compile(rf"\b[{UP}]+(?:\s+[{UP}]+)*\b(?=\W+[{UP}]?[{LOW}])")  # "Y DESPUÉS movió"
# Documented in the WEB preface: Matthew 23:13/14 are in the other order than in RV1909
# (swapped back), and RV1909 has the Comma Johanneum in 1 John 5:7-8 (dropped).
SWAPPED_IN_WEB = [(("Matthew", 23, 13), ("Matthew", 23, 14))]
TEXTUAL_VARIANTS = {("I John", 5, 7), ("I John", 5, 8)}
STRONGS = re.compile(r"\b[HG]\d{3,5}\b|strong:")


def dump_module(module: str) -> str:
    """Return the `mod2imp` dump of an installed SWORD module."""
    cmd = ["mod2imp", module]
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, encoding="utf-8").stdout
    except FileNotFoundError:
        raise SystemExit(
            "mod2imp not found: apt-get install libsword-utils sword-text-web "
            "sword-text-sparv, or pass --eng/--spa dumps"
        ) from None


def parse_imp(text: str) -> dict[Key, str]:
    """Map (book, chapter, verse) to raw OSIS markup; skip headings and verse 0 entries."""
    parts = KEY_LINE.split(text)
    verses: dict[Key, str] = {}
    for key, body in zip(parts[1::2], parts[2::2], strict=True):
        m = VERSE_KEY.match(key.strip())
        if m and int(m[3]) > 0:
            verses[(m[1], int(m[2]), int(m[3]))] = body
    return verses


def clean(markup: str) -> str:
    """Turn one verse of OSIS markup into plain NFC text."""
    markup = BOOK_END.split(markup)[0]  # drop back matter (the English glossary) after the book
    # Notes, non-canonical headings and speaker labels vanish but leave a word break,
    # unless closing punctuation follows (then the space would be spurious).
    markup = DROPPED.sub(lambda m: "" if re.match(CLOSING_PUNCT, m.string[m.end() :]) else " ", markup)
    # Inline tags (Strong's <w>, <transChange>, <q>, ...) keep their text; they separate
    # words only when a letter touches each side of them.
    markup = INLINE_TAG.sub("\0", markup)
    markup = re.sub(r"(?<=\w)\0+(?=\w)", " ", markup).replace("\0", "")
    text = ANY_TAG.sub(" ", markup)  # structural tags (<l>, <div>, psalm <title>, ...)
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = re.sub(r"\s+(?=" + CLOSING_PUNCT + r")", "", " ".join(text.split()))
    return text.strip()


def last_verses(verses: dict[Key, str]) -> set[Key]:
    """Return the key of the last verse of every book."""
    last: dict[str, Key] = {}
    for key in verses:
        last[key[0]] = max(last.get(key[0], key), key)
    return set(last.values())


def recase(run: str, counts: Counter[str]) -> str:
    """Recase an all-caps run: first word capitalised, others as most often seen."""
    words = run.split()
    out = [words[0].capitalize()]
    for w in words[1:]:
        out.append(w.capitalize() if counts[w.capitalize()] > counts[w.lower()] else w.lower())
    return " ".join(out)


def fix_spanish(spa: dict[Key, str]) -> None:
    """Cut epistle subscriptions and recase chapter-opening capitals, in place.

    RV1909 prints the first word(s) of each chapter in capitals ("EN el principio",
    "Salmo de David. JEHOVÁ, no me reprendas"); the first capitals run that is followed
    by a lower-case word in verse 1 is recased.
    """
    for key in sorted(last_verses(spa)):
        m = SUBSCRIPTION.match(spa[key])
        if m:
            print(f"  cut subscription {key[0]} {key[1]}:{key[2]}: {m[2]!r}")
            spa[key] = m[1]
    counts = Counter(w for text in spa.values() for w in re.findall(r"\w+", text))
    for key, text in spa.items():
        if key[2] == 1:
            m = next((m for m in CAPS_RUN.finditer(text) if re.search(r"\w\w", m[0])), None)
            if m:
                spa[key] = text[: m.start()] + recase(m[0], counts) + text[m.end() :]


def align(eng: dict[Key, str], spa: dict[Key, str], order: list[str]) -> list[Pair]:
    """Join on verse keys in canonical order, dropping pairs with an empty side."""
    rank = {book: i for i, book in enumerate(order)}
    keys = sorted(eng.keys() & spa.keys(), key=lambda k: (rank[k[0]], k[1], k[2]))
    return [(k, spa[k], eng[k]) for k in keys if spa[k] and eng[k]]


def gap_neighbours(eng: dict[Key, str], spa: dict[Key, str]) -> set[Key]:
    """Keys of verses just before a verse that is empty on one side only.

    A verse missing from one module is usually glued onto the previous verse there,
    so that pair is unreliable.
    """
    out = set()
    for book, ch, v in sorted(eng.keys() & spa.keys()):
        if bool(eng[(book, ch, v)]) != bool(spa[(book, ch, v)]):
            side = "en" if not eng[(book, ch, v)] else "es"
            print(f"  {side} empty at {book} {ch}:{v}; dropping {book} {ch}:{v - 1} too")
            out.add((book, ch, v - 1))
    return out


def deviations(pairs: list[Pair]) -> list[float]:
    """Per pair, d = |log2(len(es)/len(en)) - corpus median| (0 = typical length ratio)."""
    logr = [math.log2(len(es) / len(en)) for _, es, en in pairs]
    med = statistics.median(logr)
    return [abs(lr - med) for lr in logr]


def misaligned_chapters(pairs: list[Pair], whole: float = 0.33, tail: float = 0.6) -> set[tuple[str, int]]:
    """Flag chapters whose verse boundaries disagree between the two texts.

    A chapter forced into a different versification is shifted throughout (high mean d),
    or from some verse to the end, where the leftover text is glued onto the last verse
    (high mean d over a suffix). Drop when mean d over the chapter > `whole`, or over any
    suffix of >= 3 verses > `tail`. Aligned chapters stay below 0.3 and 0.55.
    """
    chapters: dict[tuple[str, int], list[float]] = {}
    for ((book, ch, _), _, _), d in zip(pairs, deviations(pairs), strict=True):
        chapters.setdefault((book, ch), []).append(d)
    bad = set()
    for chap, d in chapters.items():
        mean = statistics.fmean(d)
        worst_tail = max(statistics.fmean(d[-k:]) for k in range(min(3, len(d)), len(d) + 1))
        if mean > whole or worst_tail > tail:
            print(f"  drop {chap[0]} {chap[1]}: mean {mean:.2f}, worst tail {worst_tail:.2f}, {len(d)} pairs")
            bad.add(chap)
    return bad


def outlier_verses(pairs: list[Pair], limit: float = 1.0) -> set[Key]:
    """Keys of single pairs whose length ratio is off by more than 2**limit."""
    out = {k for (k, _, _), d in zip(pairs, deviations(pairs), strict=True) if d > limit}
    for book, ch, v in sorted(out):
        print(f"  drop outlier {book} {ch}:{v}")
    return out


def split(pairs: list[Pair]) -> dict[str, list[Pair]]:
    """Assign whole chapters to dev/test by SHA-256 order of 'book chapter'; rest is train."""
    sizes = Counter(key[:2] for key, _, _ in pairs)
    ranked = sorted(sizes, key=lambda c: hashlib.sha256(f"{c[0]} {c[1]}".encode()).hexdigest())
    assign: dict[tuple[str, int], str] = {}
    held = {"dev": 0, "test": 0}
    for chap in ranked:
        name = min(held, key=held.__getitem__)  # fill dev and test alternately
        if held[name] >= HELD_OUT_VERSES:
            break
        assign[chap] = name
        held[name] += sizes[chap]
    out: dict[str, list[Pair]] = {"train": [], "dev": [], "test": []}
    for pair in pairs:
        out[assign.get(pair[0][:2], "train")].append(pair)
    return out


def write_gz(path: Path, lines: list[str]) -> None:
    """Write lines as deterministic gzip (no file name, mtime=0)."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0, compresslevel=9) as gz,
    ):
        gz.write("".join(line + "\n" for line in lines).encode("utf-8"))


def check(pairs: list[Pair]) -> None:
    """Fail on leftover markup, entities, Strong's numbers or line breaks."""
    for key, es, en in pairs:
        for text in (es, en):
            if re.search(r"[<>\n\0]|&[#\w]+;", text) or STRONGS.search(text):
                raise SystemExit(f"unclean text at {key}: {text!r}")


def main() -> None:
    """Parse arguments, build the corpus and write it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent / "bible-es-en")
    ap.add_argument("--eng", type=Path, help=f"pre-dumped `mod2imp {ENG_MODULE}` output")
    ap.add_argument("--spa", type=Path, help=f"pre-dumped `mod2imp {SPA_MODULE}` output")
    args = ap.parse_args()
    eng_imp = args.eng.read_text("utf-8") if args.eng else dump_module(ENG_MODULE)
    spa_imp = args.spa.read_text("utf-8") if args.spa else dump_module(SPA_MODULE)
    eng = {k: clean(v) for k, v in parse_imp(eng_imp).items()}
    spa = {k: clean(v) for k, v in parse_imp(spa_imp).items()}
    for a, b in SWAPPED_IN_WEB:
        eng[a], eng[b] = eng[b], eng[a]
    fix_spanish(spa)
    order = list(dict.fromkeys(k[0] for k in eng))
    pairs = align(eng, spa, order)
    print(f"{len(eng)} en verses, {len(spa)} es verses, {len(pairs)} non-empty pairs")
    bad = misaligned_chapters(pairs)
    drop = gap_neighbours(eng, spa) | TEXTUAL_VARIANTS
    pairs = [p for p in pairs if p[0][:2] not in bad and p[0] not in drop]
    drop = outlier_verses(pairs)
    pairs = [p for p in pairs if p[0] not in drop]
    print(f"{len(pairs)} pairs kept")
    check(pairs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in split(pairs).items():
        for lang, col in (("es", 1), ("en", 2)):
            lines = [p[col] for p in part]
            write_gz(args.out_dir / f"{name}.{lang}.gz", lines)
            print(f"  {name}.{lang}: {len(lines)} lines, {sum(len(s.split()) for s in lines)} words")


if __name__ == "__main__":
    main()
