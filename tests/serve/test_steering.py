"""How a request steers the search (nmt.serve.steering), in-process against the tiny RNNsearch of test_app:
sampling in /translate and /analyze, prefix, constraints, glossary and alignment in /translator/translate and
/analyze, and the refusals, each naming its field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from test_app import client, run  # noqa: E402,F401  (the module's trained model fixture)

from nmt.config import DecodeConfig  # noqa: E402
from nmt.decoding.translate import Translator  # noqa: E402


def test_sampling_in_translate_and_analyze_is_seeded(run: Path) -> None:  # noqa: F811
    offline = Translator.open(str(run))
    ask = {"method": "sample", "topk": 10, "seed": 3}
    want = offline.translate(["ka lo mi", "ne ru"], DecodeConfig(method="sample", topk=10, seed=3))
    with client(run) as c:
        first = c.post("/translate", json={"q": ["ka lo mi", "ne ru"], "target": "yy", **ask}).json()
        again = c.post("/translate", json={"q": ["ka lo mi", "ne ru"], "target": "yy", **ask}).json()
        form = c.post("/translate", data={"q": "ka lo mi", "target": "yy", "method": "sample", "topk": "10",
                                          "seed": "3"}).json()
        hot = {c.post("/translate", json={"q": "ka lo mi ne ru", "target": "yy", "method": "sample",
                                          "temperature": 3.0, "seed": s}).json()["translatedText"] for s in range(8)}
        alts = c.post("/translate", json={"q": "ka lo mi", "target": "yy", "alternatives": 2, **ask}).json()
        seen = c.post("/analyze", json={"q": "ka lo mi", "n_best": 3, "topp": 0.9, **ask}).json()
        seen_again = c.post("/analyze", json={"q": "ka lo mi", "n_best": 3, "topp": 0.9, **ask}).json()
    assert first == again and first["translatedText"] == want and form["translatedText"] == want[0]
    assert len(hot) > 1  # hot samples of different seeds differ
    assert len(alts["alternatives"]) == 2
    assert len(seen["nbest"]) == 3 and seen == seen_again
    assert seen["translation"] == offline.translate(["ka lo mi"], DecodeConfig(method="sample", topk=10, seed=3,
                                                                               topp=0.9, n_best=3))[0]


def test_opennmt_items_take_prefix_constraints_glossary_and_sampling(run: Path) -> None:  # noqa: F811
    offline = Translator.open(str(run))
    beam = DecodeConfig(method="beam", beam=5)
    with client(run) as c:
        out = c.post("/translator/translate", json=[
            {"src": "ka lo mi", "prefix": "river", "align": True}, {"src": "ka lo mi", "constraints": ["stone river"]},
            {"src": "ne ru", "glossary": {"ru": "river"}}, {"src": "ne ru", "method": "sample", "seed": 5}]).json()[0]
    assert out[0]["tgt"] == offline.translate(["ka lo mi"], DecodeConfig(), prefixes=["river"])[0]
    assert out[0]["tgt"].startswith("river")
    assert out[0]["align"] == [offline.translate(["ka lo mi"], DecodeConfig(alignment="hard"),
                                                 prefixes=["river"])[0].split(" ||| ")[1]]
    assert out[1]["tgt"] == offline.translate(["ka lo mi"], beam, terms=[["stone river"]])[0]
    assert out[2]["tgt"] == offline.translate(["ne ru"], beam, terms=[["river"]])[0] and "river" in out[2]["tgt"]
    assert out[3]["tgt"] == offline.translate(["ne ru"], DecodeConfig(method="sample", seed=5))[0]


def test_analyze_takes_prefix_glossary_and_gives_the_word_alignment(run: Path) -> None:  # noqa: F811
    with client(run) as c:
        started = c.post("/analyze", json={"q": "ka lo mi", "prefix": "river", "alignment": "hard"}).json()
        plain = c.post("/translate", json={"q": "ka lo mi", "prefix": "river", "alignment": "hard",
                                           "target": "yy"}).json()
        held = c.post("/analyze", json={"q": "ne ru", "glossary": {"ru": "river"}, "alignment": "hard"}).json()
        listed = c.post("/translate", json={"q": "ne ru", "glossary": {"ru": "river"}, "target": "yy"}).json()
        soft = c.post("/analyze", json={"q": "ka lo mi", "alignment": "soft"}).json()
        none = c.post("/analyze", json={"q": "ka lo mi"}).json()
    assert started["translation"] == plain["translatedText"] and started["translation"].startswith("river")
    assert started["alignment"] == plain["alignment"]
    pairs = [tuple(map(int, p.split("-"))) for p in started["alignment"].split()]
    assert len(pairs) == len(started["target_words"]) and started["source_words"] == ["ka", "lo", "mi"]
    assert all(i < len(started["source_words"]) for i, _ in pairs)
    assert held["translation"] == listed["translatedText"] and "river" in held["translation"].split()
    assert held["missing"] == []
    rows = soft["alignment"].split()
    assert len(rows) == len(soft["target_words"]) and all(len(r.split(",")) == 3 for r in rows)
    assert "alignment" not in none and "source_words" not in none


REFUSED = [  # (route, body, status, a word the error must name)
    ("/translate", {"q": "ka lo", "target": "yy", "method": "greedy", "constraints": ["river"]}, 400, "method"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "sample", "glossary": {"ka": "x"}}, 400, "glossary"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "sample", "prefix": "river"}, 400, "prefix"),
    ("/translate", {"q": "ka lo", "target": "yy", "topk": 10}, 422, "topk"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "beam", "seed": 1, "temperature": 2}, 422, "seed"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "sample", "beam": 4}, 422, "beam"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "sample", "topp": 1.5}, 422, "topp"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "sample", "temperature": 0}, 422, "temperature"),
    ("/translate", {"q": "ka lo", "target": "yy", "method": "nucleus"}, 422, "method"),
    ("/translate", {"q": "ka lo", "target": "yy", "glossary": {" ": "river"}}, 422, "glossary"),
    ("/translate", {"q": "ka lo", "target": "yy", "glossary": {"ka": ""}}, 422, "glossary"),
    ("/analyze", {"q": "ka lo", "method": "greedy", "glossary": {"ka": "river"}}, 400, "glossary"),
    ("/analyze", {"q": "ka lo", "prefix": "river", "constraints": ["stone"]}, 400, "prefix"),
    ("/analyze", {"q": "ka lo", "alignment": "both"}, 422, "alignment"),
    ("/analyze", {"q": "ka lo", "seed": 2}, 422, "seed"),
    ("/translator/translate", [{"src": "ka", "method": "sample", "prefix": "river"}], 400, "prefix"),
    ("/translator/translate", [{"src": "ka", "constraints": "river"}], 422, "constraints"),
    ("/translator/translate", [{"src": "ka", "glossary": {"ka": "x"}, "prefix": "y"}], 400, "prefix"),
]


def test_refusals_are_json_errors_naming_the_field(run: Path) -> None:  # noqa: F811
    with client(run) as c:
        answers = [c.post(route, json=body) for route, body, _, _ in REFUSED]
        assert c.post("/translate", json={"q": "ka", "target": "yy"}).status_code == 200  # still serving
    for (route, body, status, word), r in zip(REFUSED, answers, strict=True):
        assert r.status_code == status and word in r.json()["error"], (route, body, r.status_code, r.text)


def test_a_prefixed_and_a_constrained_request_in_one_batch_window_both_succeed(run: Path) -> None:  # noqa: F811
    """Constrained search takes no prefixes: the batcher searches such requests apart even when they come
    together with the same setting."""
    offline = Translator.open(str(run))
    beam = DecodeConfig(method="beam", beam=5)
    with client(run, batch_wait_ms=300.0) as c:
        model = c.app.state.models["run"]

        async def together() -> list:
            return await asyncio.gather(model.translate(["ka lo mi"], beam, 250, prefixes=["river"]),
                                        model.translate(["ne ru"], beam, 250, terms=[["river"]]))

        started, held = c.portal.call(together)
    assert model.texts(started[0][:1]) == offline.translate(["ka lo mi"], beam, prefixes=["river"])
    assert model.texts(held[0][:1]) == offline.translate(["ne ru"], beam, terms=[["river"]])
