"""The cost and effect of a glossary: ``python -m nmt.bench.terms --checkpoint RUN --src S --ref R``.

Builds a glossary from the references (each reference word aligned, by the model's teacher-forced attention, to
a source word; capitalised source words of 4+ letters whose aligned word is the same in at least 75% of their 2+
occurrences), then translates the source with beam 5 with and without it, interleaved (plain, glossary, plain,
glossary), and prints sentences/s, the term-use rate (the share of the glossary's target terms, per occurrence
of their source terms, found as whole words in the output) and BLEU for each.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import time
from collections import Counter, defaultdict
from pathlib import Path

import sacrebleu
import torch

from nmt.config import DecodeConfig
from nmt.data.load import read_lines
from nmt.decoding import alignment
from nmt.decoding.terms import Glossary, sentence_terms
from nmt.decoding.translate import Translator

STRIP = string.punctuation + "„“”«»"


def build_glossary(t: Translator, src: list[str], ref: list[str], min_count: int = 2,
                   agree: float = 0.75) -> dict[str, str]:
    """Source word -> target word pairs that the references use consistently (see the module docstring)."""
    ids = t.encode(src, 250)
    ref_ids = t.tokenizer.encode_tgt(ref)
    pairs: dict[str, Counter] = defaultdict(Counter)
    for s, r, m in zip(ids, ref_ids, t.word_alignments(ids, ref_ids), strict=True):
        sw = alignment.words([t.tokenizer.src.id_to_piece(i) for i in s])
        tw = alignment.words([t.tokenizer.tgt.id_to_piece(i) for i in r])
        for v, w in alignment.hard(m):
            a, b = sw[v].strip(STRIP), tw[w].strip(STRIP)
            if v > 0 and len(a) >= 4 and a.isalpha() and a[0].isupper() and len(b) >= 3 and b.isalpha():
                pairs[a][b] += 1
    out = {}
    for a, counts in pairs.items():
        b, n = counts.most_common(1)[0]
        if n >= min_count and n >= agree * sum(counts.values()):
            out[a] = b
    return out


def term_use(outputs: list[str], wanted: list[list[str]]) -> float:
    """The share of wanted target terms (per occurrence) found as whole words in the outputs."""
    hit = total = 0
    for text, terms in zip(outputs, wanted, strict=True):
        for term, n in Counter(terms).items():
            found = len(re.findall(rf"(?<!\w){re.escape(term)}(?!\w)", text))
            hit, total = hit + min(found, n), total + n
    return hit / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved plain/glossary pairs")
    ap.add_argument("--out", default="runs/bench/terms.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = Translator.open(args.checkpoint, device="cpu")
    src, ref = list(read_lines(Path(args.src))), list(read_lines(Path(args.ref)))
    glossary = Glossary(build_glossary(t, src, ref))
    wanted = sentence_terms(src, None, glossary)
    dc = DecodeConfig(method="beam", beam=5)
    rows: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, terms in (("plain", None), ("glossary", wanted)):
            start = time.perf_counter()
            hyps = t.translate(src, dc, terms=terms)
            seconds = time.perf_counter() - start
            rows.setdefault(name, {"seconds": []})["seconds"].append(seconds)
            rows[name].update(bleu=sacrebleu.corpus_bleu(hyps, [ref]).score, term_use=term_use(hyps, wanted))
    for r in rows.values():
        r["sent_s"] = len(src) / min(r["seconds"])
    report = {"entries": len(glossary.pairs), "sentences_with_terms": sum(map(bool, wanted)),
              "terms": sum(map(len, wanted)), **rows,
              "slowdown": rows["plain"]["sent_s"] / rows["glossary"]["sent_s"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
