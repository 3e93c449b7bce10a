"""The API of ``nmt serve`` in-process (FastAPI's TestClient) against a tiny RNNsearch trained in the test:
both API shapes, n-best, attention and gates, scoring, dynamic batching, limits, API keys and rate limits (on an
injected clock), and bad input."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
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
from nmt.serve.auth import Guard  # noqa: E402
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


def client(run: Path, clock: Callable[[], float] | None = None, **settings) -> TestClient:
    """A client of the app for ``run`` with ``settings``; ``clock``: the one its limits count minutes on."""
    sc = replace(ServeConfig(checkpoint=str(run)), **settings)
    executor = ThreadPoolExecutor(sc.workers)
    models = load_models([str(run)], "none", sc.batch_wait_ms / 1000, executor, sc.workers)
    return TestClient(create_app(models, sc, executor, Guard.from_config(sc, clock) if clock else None))


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


def test_constraints_and_a_glossary_in_translate_requests(run: Path) -> None:
    offline = Translator.open(str(run))
    want = offline.translate(["ka lo mi", "ne ru"], DecodeConfig(method="beam", beam=5),
                             terms=[["stone river"], ["river"]])
    assert "stone river" in want[0] and "river" in want[1].split()
    with client(run) as c:
        many = c.post("/translate", json={"q": ["ka lo mi", "ne ru"], "target": "yy",
                                          "constraints": [["stone river"], []], "glossary": {"ru": "river"}}).json()
        one = c.post("/translate", json={"q": "ka lo mi", "target": "yy", "constraints": ["stone river"]}).json()
        wrong = c.post("/translate", json={"q": ["ka", "lo"], "target": "yy", "constraints": [["stone"]]})
        mixed = c.post("/translate", json={"q": "ka", "target": "yy", "constraints": ["stone"], "prefix": "x"})
    assert many["translatedText"] == want and one["translatedText"] == want[0]
    assert wrong.status_code == 422 and "constraints" in wrong.json()["error"]
    assert mixed.status_code == 400 and "prefix" in mixed.json()["error"]


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


KEY, WRONG = "k-51c2-the-secret", "not-the-key-7f3a"


def test_api_keys_are_asked_for_and_checked_and_never_logged(run: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# who may translate\n{KEY}\n", encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    body, bearer = {"q": "ka lo mi", "target": "yy"}, {"Authorization": f"Bearer {KEY}"}
    with client(run, api_keys=str(keys)) as c:
        want = c.post("/translate", json={**body, "api_key": KEY})
        accepted = [c.post("/translate", data={**body, "api_key": KEY}),
                    c.post("/translate", files={k: (None, v) for k, v in {**body, "api_key": KEY}.items()}),
                    c.post("/translate", params={**body, "api_key": KEY}),
                    c.post("/translate", json=body, headers=bearer), c.post("/translate", data=body, headers=bearer)]
        others = [c.post("/detect", data={"q": "ka", "api_key": KEY}),
                  c.post("/translator/translate", json=[{"src": "ka lo", "id": 0}], headers=bearer),
                  c.post("/analyze", json={"q": "ka lo", "api_key": KEY}),
                  c.post("/score", json={"pairs": [{"src": "ka", "tgt": "cat"}]}, params={"api_key": KEY})]
        refused = [c.post("/translate", json=body), c.post("/translate", json={**body, "api_key": WRONG}),
                   c.post("/translate", data={**body, "api_key": WRONG}), c.post("/translate", data=body),
                   c.post("/translate", json=body, headers={"Authorization": f"Bearer {WRONG}"}),
                   c.post("/detect", json={"q": "ka"}), c.post("/translator/translate", json=[{"src": "ka"}]),
                   c.post("/analyze", json={"q": "ka", "api_key": WRONG}),
                   c.post("/score", json={"pairs": [{"src": "ka", "tgt": "cat"}]}),
                   c.post("/translate", content=b"{not json", headers={"content-type": "application/json"})]
        open_ = [c.get(path) for path in ("/health", "/languages", "/models", "/", "/static/app.js", "/docs")]
    assert want.status_code == 200 and all(r.json() == want.json() for r in accepted)
    assert [r.status_code for r in others] == [200] * 4
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(isinstance(r.json()["error"], str) for r in refused)
    assert "required" in refused[0].json()["error"] and "not valid" in refused[1].json()["error"]
    assert [r.status_code for r in open_] == [200] * len(open_)
    # the server's log lines (the test's HTTP client logs the URLs it asks for: a key in a query string is the
    # client's to keep out of its own logs, and a proxy's)
    server = [rec.getMessage() for rec in caplog.records if not rec.name.startswith("httpx")]
    said = [r.text for r in [want, *accepted, *others, *refused]] + server
    assert not [line for line in said if KEY in line or WRONG in line]


class Clock:
    """A clock the test moves by hand: minutes pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_request_and_character_limits_per_key_are_hit_and_reset(run: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\nsmall-key char_limit=10\n", encoding="utf-8")
    clock = Clock()
    with client(run, clock, api_keys=str(keys), req_limit=3) as c:
        ask = lambda key, q="ka lo": c.post("/translate", json={"q": q, "target": "yy", "api_key": key})  # noqa: E731
        assert [ask(KEY).status_code for _ in range(3)] == [200] * 3
        over = ask(KEY)
        assert over.status_code == 429 and "req_limit=3" in over.json()["error"]
        assert over.headers["retry-after"] == "60"
        assert ask("small-key").status_code == 200  # each key counts on its own
        clock.now += 30
        assert ask(KEY).headers["retry-after"] == "30"
        clock.now += 30.5  # a minute after the first three: room again
        assert ask(KEY).status_code == 200
        assert [ask("small-key").status_code for _ in range(2)] == [200] * 2  # 5 + 5 characters this minute
        chars = ask("small-key", "ka")
        assert chars.status_code == 429 and "char_limit=10" in chars.json()["error"]
        clock.now += 60
        assert ask("small-key", "ka lo mi ne ru").status_code == 413  # 14 characters never fit 10 a minute
        assert ask("small-key").status_code == 200


def test_without_keys_the_limits_are_per_client_address(run: Path) -> None:
    clock = Clock()
    with client(run, clock, req_limit=2) as c:
        codes = [c.post("/translate", json={"q": "ka", "target": "yy"}).status_code for _ in range(3)]
        assert c.get("/health").status_code == 200  # not counted, never limited
        analyze = c.post("/analyze", json={"q": "ka"})
        clock.now += 60
        assert c.post("/translator/translate", json=[{"src": "ka"}]).status_code == 200
    assert codes == [200, 200, 429] and analyze.status_code == 429
