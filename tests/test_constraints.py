"""Terminology: constrained beam search (dynamic beam allocation) places every phrase it is given exactly as often
as asked, or names what it could not place; sentences without phrases decode exactly as before; glossaries match
whole source words; ``nmt translate constraints=FILE glossary=FILE``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import random_batch, tiny_model
from test_alignment import runs  # noqa: F401  (the module's trained runs)
from test_cli import nmt

import nmt as nmt_api
from nmt.config import DecodeConfig
from nmt.decoding.constrained import _Phrase
from nmt.decoding.search import beam_search, decode_all, max_lengths
from nmt.decoding.terms import Glossary, Term, sentence_terms
from nmt.errors import NMTError


def _count(tokens: list[int], phrase: tuple[int, ...]) -> int:
    """Occurrences of ``phrase`` in ``tokens``, overlapping ones too."""
    n = len(phrase)
    return sum(tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1))


def _setup():
    model, b = tiny_model(seed=6), random_batch()
    ids = [b.src[i, : b.src_len[i]].tolist() for i in range(b.src.shape[0])]
    return model, b, ids


@pytest.mark.parametrize("n_best", [1, 2])
def test_every_phrase_appears_as_often_as_asked_and_free_sentences_are_unchanged(n_best: int) -> None:
    model, b, ids = _setup()
    terms = [[Term("a", (7, 8))], [], [Term("b", (9,), 2), Term("c", (10, 11, 12))], [Term("d", (13, 13))]]
    dc = DecodeConfig(method="beam", beam=3, n_best=n_best, max_len_ratio=1.5, max_len_extra=3)
    held = decode_all(model, ids, dc, terms=terms)
    plain = beam_search(model, b.src, b.src_len, max_lengths(b.src_len, 1.5, 3), beam=3, n_best=n_best)
    for i, ts in enumerate(terms):
        assert len(held[i]) == n_best and not held[i][0].missing  # the best places them all
        for h in held[i]:  # the others too, or they name what they lack (they rank after all that place all)
            assert all(_count(h.tokens, t.pieces) == t.times for t in ts if t.text not in h.missing), (h, ts)
        if not ts:
            assert [h.tokens for h in held[i]] == [h.tokens for h in plain[i]]


def test_phrase_progress_follows_overlaps() -> None:
    cols = {p: p for p in range(20)}
    phrase = _Phrase(Term("x", (5, 5, 6)), cols)  # "5 5 5 6" holds it once, starting at the second 5
    q, done = 0, 0
    for col in (5, 5, 5, 6):
        q, d = phrase.step(q, col)
        done += d
    assert done == 1 and q == 0
    ab = _Phrase(Term("y", (3, 4, 3)), cols)  # "3 4 3 4 3": twice, overlapping
    q, done = 0, 0
    for col in (3, 4, 3, 4, 3):
        q, d = ab.step(q, col)
        done += d
    assert done == 2


def test_a_phrase_outside_the_output_columns_is_named_missing() -> None:
    model, b, ids = _setup()
    model.restrict_output(torch.arange(4, 12))
    dc = DecodeConfig(method="beam", beam=3)
    out = decode_all(model, ids[:1], dc, terms=[[Term("far", (15,)), Term("near", (7,))]])
    assert out[0][0].missing == ["far"] and _count(out[0][0].tokens, (7,)) == 1


def test_constraints_need_beam_search_alone() -> None:
    model, b, ids = _setup()
    terms = [[Term("a", (7,))]] + [[]] * 3
    with pytest.raises(NMTError, match="beam search"):
        decode_all(model, ids, DecodeConfig(), terms=terms)
    with pytest.raises(NMTError, match="prefix"):
        decode_all(model, ids, DecodeConfig(method="beam"), prefixes=[[7]] * 4, terms=terms)


def test_a_glossary_matches_whole_words_longest_first(tmp_path: Path) -> None:
    g = tmp_path / "g.tsv"
    g.write_text("# terms\nNew York\tNueva York\nYork\tYorkshire\nHund\tdog\n", encoding="utf-8")
    glossary = Glossary.read(g)
    assert glossary.apply("Ein Hund in New York, ein Hundefutter, York.") == ["dog", "Nueva York", "Yorkshire"]
    assert sentence_terms(["Hund Hund", "x"], [["a"], []], glossary) == [["a", "dog", "dog"], []]
    g.write_text("Hund\tdog\nKatze\n", encoding="utf-8")
    with pytest.raises(NMTError, match=r"g\.tsv:2"):
        Glossary.read(g)
    g.write_text("Hund\tdog\nHund\tcanine\n", encoding="utf-8")
    with pytest.raises(NMTError, match=r"g\.tsv:2: source term 'Hund' has two targets \(see line 1\)"):
        Glossary.read(g)


def test_translate_takes_constraints_and_a_glossary(runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    src, con, glo = tmp_path / "in.xx", tmp_path / "con.yy", tmp_path / "g.tsv"
    src.write_text("ka lo mi\nne ru\n\n", encoding="utf-8")
    con.write_text("stone river\n\n\n", encoding="utf-8")
    glo.write_text("ru\triver\n", encoding="utf-8")
    proc = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", f"constraints={con}",
               f"glossary={glo}", "decode=beam5", "threads=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "stone river" in lines[0] and "river" in lines[1].split() and lines[2] == ""
    con.write_text("stone\n", encoding="utf-8")
    proc = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", f"constraints={con}",
               "decode=beam5", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "con.yy" in proc.stderr


def test_the_api_takes_constraints_and_a_glossary_dict(runs: dict[str, Path]) -> None:  # noqa: F811
    model = nmt_api.load(runs["rnnsearch"], device="cpu")
    out = model.translate(["ka lo mi", "ne ru"], constraints=[["stone"], []], glossary={"ru": "river"}, beam=5)
    assert "stone" in out[0].split() and "river" in out[1].split()
    best = model.translate(["ka lo mi"], constraints=[["stone"]], beam=5, n_best=2)[0]
    assert "stone" in best[0].text.split()
