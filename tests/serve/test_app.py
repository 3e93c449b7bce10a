"""The API of ``nmt serve`` in-process (FastAPI's TestClient) against a tiny RNNsearch trained in the test:
both API shapes, n-best, attention and gates, scoring, dynamic batching, limits and bad input."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from nmt.config import Config, DataConfig, DecodeConfig, ModelConfig, TrainConfig  # noqa: E402
from nmt.decoding.translate import Translator  # noqa: E402
from nmt.evaluation.score import score_pairs  # noqa: E402
from nmt.serve.app import create_app  # noqa: E402
from nmt.serve.config import ServeConfig  # noqa: E402
from nmt.serve.engine import load_models  # noqa: E402
from nmt.training.train import train  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    data = replace(DataConfig(), name="tiny", format="text", path=str(corpus_writer(tmp / "corpus")), src_lang="xx",
                   tgt_lang="yy", vocab_size=40, cache_dir=str(tmp / "cache"))
    model = replace(ModelConfig(), arch="rnnsearch", emb_dim=8, hidden_dim=12, maxout_dim=6, attention_dim=10)
    tc = replace(TrainConfig(), max_steps=30, eval_every=30, batch_tokens=300, tensorboard=False, keep_last=0)
    train(Config(data=data, model=model, train=tc, name="tiny", run_dir=str(tmp / "run")))
    return tmp / "run"


def client(run: Path, **settings) -> TestClient:
    sc = replace(ServeConfig(checkpoint=str(run)), **settings)
    executor = ThreadPoolExecutor(sc.workers)
    models = load_models([str(run)], "none", sc.batch_wait_ms / 1000, executor, sc.workers)
    return TestClient(create_app(models, sc, executor))


def test_libretranslate_shape(run: Path) -> None:
    offline = Translator.open(str(run)).translate(["ka lo mi", "ne ru"], DecodeConfig())
    with client(run) as c:
        assert c.get("/languages").json() == [{"code": "xx", "name": "xx", "targets": ["yy"]}]
        assert c.post("/translate", json={"q": "ka lo mi", "source": "xx", "target": "yy"}).json() == {
            "translatedText": offline[0]}
        many = c.post("/translate", json={"q": ["ka lo mi", "", "ne ru"], "source": "auto", "target": "yy",
                                          "alternatives": 2}).json()
    assert many["translatedText"][1] == "" and len(many["translatedText"]) == 3
    assert [len(a) for a in many["alternatives"]] == [2, 0, 2]


def test_opennmt_shape_and_models(run: Path) -> None:
    offline = Translator.open(str(run)).translate(["ka lo", "mi"], DecodeConfig())
    with client(run) as c:
        models = c.get("/models").json()
        out = c.post("/translator/translate", json=[{"src": "ka lo", "id": 0}, {"src": "mi", "id": 0}]).json()
        assert c.post("/translator/translate", json=[{"src": "ka", "id": 3}]).status_code == 404
    assert models[0]["model_id"] == 0 and models[0]["source"] == "xx" and models[0]["arch"] == "rnnsearch"
    assert [r["tgt"] for r in out[0]] == offline and [r["src"] for r in out[0]] == ["ka lo", "mi"]


def test_analyze_gives_nbest_attention_and_gates(run: Path) -> None:
    with client(run) as c:
        out = c.post("/analyze", json={"q": "ka lo mi", "method": "beam", "n_best": 3}).json()
    s, t = len(out["source_pieces"]), len(out["target_pieces"])
    assert len(out["nbest"]) == 3 and out["nbest"][0]["translation"] == out["translation"]
    assert [h["score"] for h in out["nbest"]] == sorted((h["score"] for h in out["nbest"]), reverse=True)
    assert len(out["attention"]) == t and all(len(row) == s and abs(sum(row) - 1) < 1e-3 for row in out["attention"])
    assert len(out["gates"]["update"]) == len(out["gates"]["reset"]) == s
    assert all(0 < v < 1 for v in out["gates"]["update"] + out["gates"]["reset"])


def test_score_is_log_p_of_the_pair(run: Path) -> None:
    pairs = [("ka lo", "cat dog"), ("mi", "sun")]
    expected = score_pairs(Translator.open(str(run)), [a for a, _ in pairs], [b for _, b in pairs])
    with client(run) as c:
        out = c.post("/score", json={"pairs": [{"src": a, "tgt": b} for a, b in pairs]}).json()
    assert [r["logprob"] for r in out] == pytest.approx([lp for lp, _ in expected], abs=1e-4)
    assert [r["pieces"] for r in out] == [n for _, n in expected]


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_requests_share_a_batch_and_get_their_own_sentences(run: Path, workers: int) -> None:
    sentences = [["ka lo mi"], ["ne ru", "ta po si"], ["vu"], ["de ka", "lo", "mi ne"]]
    offline = Translator.open(str(run))
    with client(run, batch_wait_ms=300.0, workers=workers) as c:
        model = c.app.state.models["run"]

        async def all_at_once() -> list:
            return await asyncio.gather(*(model.translate(s, DecodeConfig(), 250) for s in sentences))

        results = c.portal.call(all_at_once)
        batches = model.batcher.batches
    assert batches == 1  # the four requests arrived within the window: one search
    for lines, hyps in zip(sentences, results, strict=True):
        assert model.texts([h[0] for h in hyps]) == offline.translate(lines, DecodeConfig())


BAD = [
    (b"{not json", "application/json", 400),
    (b"hello", "text/plain", 415),
    (b'{"q": 5, "target": "yy"}', "application/json", 422),
    (b'{"target": "yy"}', "application/json", 422),
    (b'{"q": "ka", "target": "fr"}', "application/json", 400),
    (b'{"q": "' + b"a" * 3000 + b'", "target": "yy"}', "application/json", 422),
    (b'{"q": ' + str(["ka"] * 100).replace("'", '"').encode() + b', "target": "yy"}', "application/json", 413),
    (b'{"q": "ka", "target": "yy", "alternatives": 50}', "application/json", 422),
    (b'{"q": "ka", "target": "yy", "alternatives": -1}', "application/json", 422),
    (b'{"q": "\xff\xfe", "target": "yy"}', "application/json", 400),
    (b"[1, 2]", "application/json", 422),
    (b'{"q": "ka", "target": "yy"}' + b" " * 2_000_000, "application/json", 413),
]


@pytest.mark.parametrize(("body", "ctype", "status"), BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_requests_get_a_json_error(run: Path, body: bytes, ctype: str, status: int) -> None:
    with client(run) as c:
        r = c.post("/translate", content=body, headers={"content-type": ctype})
        assert r.status_code == status and isinstance(r.json()["error"], str) and r.json()["error"]
        assert c.post("/translate", json={"q": "ka", "target": "yy"}).status_code == 200  # still serving


def test_control_characters_and_empty_strings_are_handled_as_translate_does(run: Path) -> None:
    offline = Translator.open(str(run)).translate(["ka lo", ""], DecodeConfig())
    with client(run) as c:
        body = json.dumps({"q": ["ka\x00lo", "", "\ud800"], "target": "yy"})  # a lone surrogate, escaped
        out = c.post("/translate", content=body, headers={"content-type": "application/json"}).json()
        assert c.post("/analyze", json={"q": "", "model": "nope"}).status_code == 404
    assert out["translatedText"][:2] == offline and isinstance(out["translatedText"][2], str)


def test_libretranslate_requests_as_forms_and_query_strings_and_nmt_fields(run: Path) -> None:
    offline = Translator.open(str(run))
    dc = DecodeConfig(alignment="hard")
    with client(run) as c:
        want = c.post("/translate", json={"q": "ka lo mi", "target": "yy"}).json()
        assert c.post("/translate", data={"q": "ka lo mi", "target": "yy"}).json() == want
        assert c.post("/translate", files={"q": (None, "ka lo mi"), "target": (None, "yy")}).json() == want
        assert c.post("/translate", params={"q": "ka lo mi", "target": "yy"}).json() == want
        many = c.post("/translate", data={"q": ["ka lo mi", "ne ru"], "target": "yy", "alignment": "hard",
                                          "prefix": ["river", ""]}).json()
        assert many["translatedText"] == offline.translate(["ka lo mi", "ne ru"], DecodeConfig(),
                                                           prefixes=["river", ""])
        assert many["translatedText"][0].startswith("river")
        texts = offline.translate(["ka lo mi", "ne ru"], dc, prefixes=["river", ""])
        assert many["alignment"] == [t.split(" ||| ")[1] for t in texts]
        html = c.post("/translate", json={"q": "ka", "target": "yy", "format": "html"})
        assert html.status_code == 400 and "format=html" in html.json()["error"]
        wrong = c.post("/translate", json={"q": ["ka", "lo"], "target": "yy", "prefix": ["x"]})
        assert wrong.status_code == 422 and "prefix" in wrong.json()["error"]
        assert c.post("/translate", data={"target": "yy"}).status_code == 422  # q missing: as in JSON


def test_detect_names_the_served_source_language(run: Path) -> None:
    with client(run) as c:
        assert c.post("/detect", json={"q": "ka lo mi"}).json() == [{"language": "xx", "confidence": 100.0}]
        assert c.post("/detect", data={"q": "ka lo mi"}).json() == [{"language": "xx", "confidence": 100.0}]
        assert c.post("/detect", json={"text": "ka"}).status_code == 422


def test_opennmt_answers_carry_the_alignment_when_asked(run: Path) -> None:
    offline = Translator.open(str(run)).translate(["ka lo mi"], DecodeConfig(alignment="hard"))[0]
    with client(run) as c:
        out = c.post("/translator/translate", json=[{"src": "ka lo mi", "id": 0, "align": True}]).json()[0][0]
        plain = c.post("/translator/translate", json=[{"src": "ka lo mi", "id": 0}]).json()[0][0]
    assert out["align"] == [offline.split(" ||| ")[1]] and "align" not in plain and "pred_score" in plain
