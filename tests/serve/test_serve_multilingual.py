"""``nmt serve`` with a one-to-many model (``data.pairs``): /languages lists every pair, /translate and /analyze
translate into the asked target, as offline translation does, and the word alignments leave the target tag out."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from nmt.config import Config, DataConfig, DecodeConfig, ModelConfig, TrainConfig  # noqa: E402
from nmt.decoding.translate import Translator  # noqa: E402
from nmt.serve.app import create_app  # noqa: E402
from nmt.serve.config import ServeConfig  # noqa: E402
from nmt.serve.engine import load_models  # noqa: E402
from nmt.training.train import train  # noqa: E402

WORDS = {"xx": "ka lo mi ne ru ta po si vu de".split(),
         "yy": "cat dog sun moon tree river stone bird fish house".split(),
         "zz": "un deux trois quatre cinq six sept huit neuf dix".split()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RNNsearch xx -> yy, zz (word-for-word translations in two vocabularies), 150 updates."""
    tmp = tmp_path_factory.mktemp("serve-multi")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for seed, (split, n) in enumerate({"train": 200, "dev": 12, "test": 12}.items()):
        rng = random.Random(seed)
        rows = [[rng.randrange(10) for _ in range(rng.randint(2, 5))] for _ in range(n)]
        for lang, words in WORDS.items():
            (corpus / f"{split}.{lang}").write_text("".join(" ".join(words[i] for i in r) + "\n" for r in rows))
    data = replace(DataConfig(), name="multi", format="text", path=str(corpus), src_lang="xx", tgt_lang="mul",
                   pairs=["xx-yy", "xx-zz"], vocab_size=60, cache_dir=str(tmp / "cache"))
    model = replace(ModelConfig(), arch="rnnsearch", emb_dim=24, hidden_dim=48, maxout_dim=24, attention_dim=24,
                    dropout=0.0)
    tc = replace(TrainConfig(), max_steps=150, eval_every=150, batch_tokens=600, lr=1e-2, tensorboard=False,
                 keep_last=0, threads="1")
    train(Config(data=data, model=model, train=tc, name="multi", run_dir=str(tmp / "run")))
    return tmp / "run"


def client(run: Path) -> TestClient:
    sc = ServeConfig(checkpoint=str(run))
    executor = ThreadPoolExecutor(sc.workers)
    return TestClient(create_app(load_models([str(run)], "none", sc.batch_wait_ms / 1000, executor), sc, executor))


def test_languages_and_models_list_every_pair(run: Path) -> None:
    with client(run) as c:
        assert c.get("/languages").json() == [{"code": "xx", "name": "xx", "targets": ["yy", "zz"]}]
        assert c.get("/models").json()[0]["pairs"] == ["xx-yy", "xx-zz"]
        assert c.post("/detect", json={"q": "ka lo mi"}).json() == [{"language": "xx", "confidence": 100.0}]


def test_translate_goes_into_the_asked_target_as_offline(run: Path) -> None:
    src = ["ka lo mi", "ne ru ta po"]
    t = Translator.open(str(run), device="cpu")
    offline = {lang: t.translate(src, DecodeConfig(), target=lang) for lang in ("yy", "zz")}
    assert offline["yy"] != offline["zz"]
    with client(run) as c:
        for lang in ("yy", "zz"):
            got = c.post("/translate", json={"q": src, "source": "xx", "target": lang})
            assert got.status_code == 200 and got.json()["translatedText"] == offline[lang]
            form = c.post("/translate", data={"q": src[0], "source": "auto", "target": lang})
            assert form.json()["translatedText"] == offline[lang][0]
        refused = c.post("/translate", json={"q": "ka", "source": "xx", "target": "fr"})
        onmt = c.post("/translator/translate", json=[{"src": "ka lo", "id": 0}])
    assert onmt.status_code == 400 and "choose the target language" in onmt.json()["error"]
    assert refused.status_code == 400
    assert refused.json()["error"] == "no model translates xx to fr; this server has xx-yy, xx-zz"


def test_alignments_and_analysis_speak_of_the_sentences_words(run: Path) -> None:
    with client(run) as c:
        aligned = c.post("/translate", json={"q": "ka lo mi", "source": "xx", "target": "zz",
                                             "alignment": "hard"}).json()
        n_tgt = len(aligned["translatedText"].split())
        pairs = [tuple(map(int, p.split("-"))) for p in aligned["alignment"].split()]
        assert [j for _, j in pairs] == list(range(n_tgt)) and all(0 <= i < 3 for i, _ in pairs)
        page = c.post("/analyze", json={"q": "ka lo mi", "target": "zz", "alignment": "hard"}).json()
        assert page["source_words"] == ["ka", "lo", "mi"] and page["alignment"] == aligned["alignment"]
        assert page["source_pieces"][0] == "<2zz>" and page["translation"] == aligned["translatedText"]
        no_target = c.post("/analyze", json={"q": "ka lo mi"})
        wrong = c.post("/analyze", json={"q": "ka lo mi", "target": "fr"})
    assert no_target.status_code == 400 and "choose the target language" in no_target.json()["error"]
    assert wrong.status_code == 400 and wrong.json()["error"] == "target: run translates into yy, zz, not fr"
