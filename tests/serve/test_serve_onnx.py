"""``nmt serve backend=onnxruntime`` in-process against an ``nmt export`` of test_app's tiny RNNsearch: every
translating route gives the torch backend's answers (greedy, beam, n-best, sampling, prefix, constraints,
glossary), and what an export cannot do (attention, gates, alignments, scores; int8, CUDA, a checkpoint where
an export is expected) is refused in one line that names it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from fastapi.testclient import TestClient  # noqa: E402
from test_app import run  # noqa: E402,F401  (the module's trained model fixture)
from test_cli import nmt  # noqa: E402

from nmt import checkpoint  # noqa: E402
from nmt.config import ExportConfig  # noqa: E402
from nmt.decoding.export import export  # noqa: E402
from nmt.errors import NMTError  # noqa: E402
from nmt.model import build_model  # noqa: E402
from nmt.serve.app import create_app  # noqa: E402
from nmt.serve.config import ServeConfig  # noqa: E402
from nmt.serve.engine import load_models  # noqa: E402

SENTENCES = ["ka lo mi", "ne ru ta po si", "vu", "", "de ka ka lo mi ne ru ta po"]


@pytest.fixture(scope="module")
def model(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The run's model with torch's random init: 30 updates only teach it "oooo", which any search finds alike,
    while random weights large enough give varied outputs that greedy and beam search disagree on."""
    ckpt = checkpoint.load(run)
    cfg = replace(ckpt.config, model=replace(ckpt.config.model, init="torch"))
    torch.manual_seed(3)
    net = build_model(cfg.model, ckpt.src_vocab, ckpt.tgt_vocab)
    path = tmp_path_factory.mktemp("serve-onnx") / "random.pt"
    checkpoint.save(checkpoint.weights_payload(net, cfg, ckpt.tokenizer, 30, ckpt.target_pieces.tolist()), path)
    return path


@pytest.fixture(scope="module")
def exported(model: Path) -> Path:
    return export(ExportConfig(checkpoint=str(model), output=str(model.parent / "onnx")))


def client(path: Path, backend: str) -> TestClient:
    """A client of the app serving ``path`` with ``backend``."""
    sc = ServeConfig(checkpoint=str(path), backend=backend)
    executor = ThreadPoolExecutor(sc.workers)
    models = load_models([str(path)], sc.quantize, sc.batch_wait_ms / 1000, executor, sc.workers,
                         backend=sc.backend)
    return TestClient(create_app(models, sc, executor))


LIBRE = [  # /translate bodies whose answers must not depend on the backend
    {"q": SENTENCES},
    {"q": SENTENCES, "method": "beam", "beam": 5},
    {"q": SENTENCES, "alternatives": 2},
    {"q": SENTENCES, "prefix": ["river", "", "cat", "", "fish"]},
    {"q": SENTENCES[:3], "constraints": [["dog"], [], ["sun moon"]]},
    {"q": "ne ru", "glossary": {"ru": "river"}},
    {"q": SENTENCES, "method": "sample", "topk": 10, "seed": 3, "alternatives": 1},
]


def test_translate_over_onnx_gives_the_torch_translations(model: Path, exported: Path) -> None:
    onmt = [{"src": "ka lo mi", "id": 0}, {"src": "ne ru", "id": 0, "method": "beam"},
            {"src": "ka lo", "id": 0, "prefix": "stone"}, {"src": "ne ru", "id": 0, "glossary": {"ru": "river"}}]
    answers = {}
    for backend, path in (("torch", model), ("onnxruntime", exported)):
        with client(path, backend) as c:
            libre = [c.post("/translate", json={"target": "yy", **body}) for body in LIBRE]
            items = c.post("/translator/translate", json=onmt)
            assert all(r.status_code == 200 for r in [*libre, items]), [r.json() for r in [*libre, items]]
            answers[backend] = ([r.json() for r in libre], [x["tgt"] for x in items.json()[0]],
                                c.post("/detect", json={"q": "ka lo mi"}).json(), c.get("/models").json()[0])
    (torch_libre, torch_items, torch_detect, torch_desc), (ort_libre, ort_items, ort_detect, ort_desc) = (
        answers["torch"], answers["onnxruntime"])
    assert ort_libre == torch_libre and ort_items == torch_items and ort_detect == torch_detect
    assert ort_libre[0] != ort_libre[1]  # greedy and beam disagree, so each search is compared
    assert ort_libre[0]["translatedText"][3] == "" and ort_libre[3]["translatedText"][0].startswith("river")
    assert "river" in ort_libre[5]["translatedText"].split()
    assert (ort_desc["arch"], ort_desc["attention"], ort_desc["backend"]) == ("rnnsearch", True, "onnxruntime")
    assert torch_desc["backend"] == "torch" and ort_desc["step"] == torch_desc["step"]


REFUSED = [  # (route, body, a word the error must name): what needs the checkpoint's teacher-forced model
    ("/analyze", {"q": "ka lo mi"}, "/analyze"),
    ("/score", {"pairs": [{"src": "ka lo", "tgt": "cat dog"}]}, "/score"),
    ("/translate", {"q": "ka lo mi", "target": "yy", "alignment": "hard"}, "alignment"),
    ("/translate", {"q": "ka lo mi", "target": "yy", "alignment": "soft"}, "alignment"),
    ("/translator/translate", [{"src": "ka lo mi", "id": 0, "align": True}], "align"),
]


def test_what_an_export_cannot_do_is_refused_naming_it(exported: Path) -> None:
    with client(exported, "onnxruntime") as c:
        for route, body, field in REFUSED:
            r = c.post(route, json=body)
            assert r.status_code == 400, (route, r.json())
            error = r.json()["error"]
            assert error.startswith(f"{field}:") and "backend=torch" in error and "\n" not in error, error
        assert c.get("/").status_code == 200 and c.get("/health").json()["status"] == "ok"


def test_startup_refuses_what_an_export_cannot_run(run: Path, exported: Path, tmp_path: Path) -> None:  # noqa: F811
    executor = ThreadPoolExecutor(1)
    for path, settings, words in [(exported, {"quantize": "int8"}, "quantize=int8 is for backend=torch"),
                                  (exported, {"device": "cuda"}, "runs on the CPU"),
                                  (run, {}, "not an nmt export directory")]:
        with pytest.raises(NMTError, match=words):
            load_models([str(path)], settings.get("quantize", "none"), 0.01, executor,
                        device=settings.get("device", "auto"), backend="onnxruntime")
    executor.shutdown()
    for args, words in [(("backend=onnxruntime", "quantize=int8"), "quantize=int8 is for backend=torch"),
                        (("backend=tf",), "backend")]:
        proc = nmt("serve", f"checkpoint={exported}", *args, "threads=1", cwd=tmp_path)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc
