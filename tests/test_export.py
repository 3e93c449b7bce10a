"""ONNX export (``nmt export``) and decoding in onnxruntime (``backend=onnxruntime``): the graphs compute what the
model computes, for both architectures and every cell type; search over them gives the torch backend's tokens;
bad input is one line and leaves nothing behind."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_alignment import runs  # noqa: F401  (the module's trained runs: rnnsearch and cho2014)
from test_cli import nmt

import nmt as nmt_api
from nmt import checkpoint
from nmt.config import DecodeConfig, ExportConfig
from nmt.decoding.export import compare, export, onnx_module, random_sources
from nmt.decoding.ort import OrtModel, read_manifest
from nmt.decoding.search import decode_all
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.model.contract import Decodable

needs_onnx = pytest.mark.skipif(not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")),
                                reason="pip install 'nmt[onnx]'")
SENTENCES = ["ka lo mi", "ne ru ta po si", "vu", "", "de ka ka lo mi ne ru ta po"]
CELLS = [("gru", "fused", True), ("gru", "equations", False), ("gru", "equations", True), ("lstm", "fused", True),
         ("elman", "fused", True), ("elman", "equations", True)]


@pytest.fixture(scope="module")
def exports(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    if not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")):
        pytest.skip("pip install 'nmt[onnx]'")
    tmp = tmp_path_factory.mktemp("onnx")
    return {arch: export(ExportConfig(checkpoint=str(run), output=str(tmp / arch))) for arch, run in runs.items()}


def _random_checkpoint(run: Path, folder: Path, arch: str, cell_type: str, cell: str, reset_after: bool) -> Path:
    """A checkpoint of an untrained model with these settings and the run's tokenizer (torch's init: weights
    large enough that a wrong gate shows)."""
    ckpt = checkpoint.load(run)
    model_cfg = replace(ckpt.config.model, arch=arch, cell_type=cell_type, cell=cell, reset_after=reset_after,
                        init="torch")
    torch.manual_seed(3)
    model = build_model(model_cfg, ckpt.src_vocab, ckpt.tgt_vocab)
    config = replace(ckpt.config, model=model_cfg)
    path = folder / f"{arch}-{cell_type}-{cell}-{reset_after}.pt"
    checkpoint.save(checkpoint.weights_payload(model, config, ckpt.tokenizer, 0, ckpt.target_pieces.tolist()), path)
    return path


@needs_onnx
@pytest.mark.parametrize("arch", ["rnnsearch", "cho2014"])
@pytest.mark.parametrize(("cell_type", "cell", "reset_after"), CELLS)
def test_graphs_compute_the_model_for_every_cell(runs: dict[str, Path], tmp_path: Path, arch: str,  # noqa: F811
                                                 cell_type: str, cell: str, reset_after: bool) -> None:
    path = _random_checkpoint(runs["rnnsearch"], tmp_path, arch, cell_type, cell, reset_after)
    out = export(ExportConfig(checkpoint=str(path), output=str(tmp_path / "onnx")))
    model, ort_model = Translator.open(path).model, OrtModel(*read_manifest(out))
    assert ort_model.columns.tolist() == model.columns.tolist()
    for batch, length, seed in [(1, 1, 1), (3, 7, 2), (6, 15, 3)]:  # shapes other than the traced one
        assert compare(model, ort_model, *random_sources(model.src_vocab, batch, length, seed), steps=4) < 1e-5
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["arch"], manifest["cell_type"], manifest["reset_after"]) == (arch, cell_type, reset_after)


@needs_onnx
def test_a_reset_before_gru_needs_its_graph_attribute(runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """The paper's candidate form is ONNX's linear_before_reset=0: the exporter's 1 would compute another GRU."""
    onnx = onnx_module()
    path = _random_checkpoint(runs["rnnsearch"], tmp_path, "rnnsearch", "gru", "equations", False)
    out = export(ExportConfig(checkpoint=str(path), output=str(tmp_path / "onnx")))
    graph = onnx.load(str(out / "encoder.onnx"))
    flags = [a.i for n in graph.graph.node if n.op_type == "GRU" for a in n.attribute
             if a.name == "linear_before_reset"]
    assert flags == [0, 0]  # one GRU node per direction
    for node in graph.graph.node:
        for a in node.attribute:
            if a.name == "linear_before_reset":
                a.i = 1
    onnx.save(graph, str(out / "encoder.onnx"))
    model = Translator.open(path).model
    assert compare(model, OrtModel(*read_manifest(out)), *random_sources(model.src_vocab)) > 1e-3


@needs_onnx
@pytest.mark.parametrize("arch", ["rnnsearch", "cho2014"])
def test_search_over_the_graphs_gives_the_same_tokens(runs: dict[str, Path], exports: dict[str, Path],  # noqa: F811
                                                      arch: str) -> None:
    torch_t = Translator.open(runs[arch])
    ort_t = Translator.open(exports[arch], backend="onnxruntime")
    for dc in (DecodeConfig(), DecodeConfig(method="beam", beam=5)):
        assert ort_t.translate(SENTENCES, dc) == torch_t.translate(SENTENCES, dc)
    # an almost untrained model scores some reorderings of the same pieces alike to the last bit: there the order
    # of 1e-7 differences picks one, so these outputs are the same or an exact tie
    dc = DecodeConfig(method="beam", beam=3, alpha=0.6, no_repeat_ngram=2)
    ids = torch_t.encode(SENTENCES, 250)
    for a, b in zip(decode_all(ort_t.model, ids, dc), decode_all(torch_t.model, ids, dc), strict=True):
        assert (a[0].tokens == b[0].tokens if a else not b) or a[0].score == pytest.approx(b[0].score, abs=1e-5)
    dc = DecodeConfig(method="beam", beam=4, n_best=3)
    got, want = ort_t.nbest(SENTENCES, dc), torch_t.nbest(SENTENCES, dc)
    assert [x.split(" ||| ")[:2] for x in got] == [x.split(" ||| ")[:2] for x in want]
    for a, b in zip(got, want, strict=True):
        assert float(a.split("logprob= ")[1].split()[0]) == pytest.approx(float(b.split("logprob= ")[1].split()[0]),
                                                                          abs=2e-4)
    prefixed = ["", "cat", "", "", "fish"]
    assert ort_t.translate(SENTENCES, DecodeConfig(), prefixes=prefixed) == torch_t.translate(
        SENTENCES, DecodeConfig(), prefixes=prefixed)
    terms = [["dog"], [], ["sun moon"], [], ["fish", "tree"]]  # constrained beam search
    dc = DecodeConfig(method="beam", beam=4)
    assert ort_t.translate(SENTENCES, dc, terms=terms) == torch_t.translate(SENTENCES, dc, terms=terms)
    dc = DecodeConfig(method="beam", beam=4, coverage=0.3)
    assert ort_t.translate(SENTENCES, dc) == torch_t.translate(SENTENCES, dc)
    dc = DecodeConfig(method="sample", n_best=2, seed=5)  # the same seed, the same draws from the same distributions
    assert [x.split(" ||| ")[:2] for x in ort_t.nbest(SENTENCES, dc)] == [x.split(" ||| ")[:2]
                                                                         for x in torch_t.nbest(SENTENCES, dc)]


@needs_onnx
def test_manifest_and_files(exports: dict[str, Path], runs: dict[str, Path]) -> None:  # noqa: F811
    folder = exports["rnnsearch"]
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.onnx", "manifest.json", "src.model", "step.onnx",
                                                        "tgt.model"]
    m = json.loads((folder / "manifest.json").read_text())
    ckpt = checkpoint.load(runs["rnnsearch"])
    assert m["format"] == "nmt-onnx-1" and m["opset"] == 17 and m["nmt_version"] == nmt_api.__version__
    assert m["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert m["columns"] == Translator.open(runs["rnnsearch"]).model.columns.tolist()
    assert isinstance(OrtModel(*read_manifest(folder)), Decodable)  # the decoding contract, as every model
    assert (folder / "tgt.model").read_bytes() == ckpt.tokenizer.tgt_model
    assert m["graphs"]["encoder"]["inputs"] == ["src", "src_len"]
    assert m["graphs"]["step"]["outputs"] == ["logprobs", "new_s", "attention"]
    shapes = {v["name"]: v["shape"] for v in m["graphs"]["step"]["values"]}
    assert shapes["keys"][:2] == ["B", "S"] and shapes["logprobs"] == ["B", len(m["columns"])]


@needs_onnx
def test_cli_round_trip_and_refusals(runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "in.xx"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "exported"
    proc = nmt("export", f"checkpoint={runs['rnnsearch']}", f"output={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ort_run = nmt("translate", "backend=onnxruntime", f"checkpoint={out}", f"input={src}", "decode=beam5",
                  "threads=1", cwd=tmp_path)
    torch_run = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", "decode=beam5", "threads=1",
                    cwd=tmp_path)
    assert ort_run.returncode == 0, ort_run.stderr
    assert ort_run.stdout == torch_run.stdout and len(ort_run.stdout.splitlines()) == len(SENTENCES)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, words in [((f"checkpoint={runs['rnnsearch']}", f"output={out}"), "not empty"),
                        ((f"checkpoint={tmp_path / 'none'}", f"output={tmp_path / 'new'}"), "not found"),
                        ((f"checkpoint={runs['rnnsearch']}", f"output={src}"), "exists")]:
        proc = nmt("export", *args, cwd=tmp_path)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for args, words in [((f"checkpoint={runs['rnnsearch']}",), "not an nmt export directory"),
                        ((f"checkpoint={out}", "quantize=int8"), "quantize=int8 is for backend=torch"),
                        ((f"checkpoint={out}", "decode.alignment=hard"), "needs backend=torch")]:
        proc = nmt("translate", "backend=onnxruntime", f"input={src}", *args, cwd=tmp_path)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half written


@needs_onnx
def test_a_failed_check_writes_nothing(runs: dict[str, Path], tmp_path: Path,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nmt.decoding.export.compare", lambda *a, **k: 0.5)
    with pytest.raises(NMTError, match="differ from the model by up to 0.5"):
        export(ExportConfig(checkpoint=str(runs["cho2014"]), output=str(tmp_path / "out")))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NMTError, match="not an ensemble"):
        export(ExportConfig(checkpoint=f"[{runs['cho2014']},{runs['rnnsearch']}]", output=str(tmp_path / "out")))
    (tmp_path / "empty").mkdir()  # an empty directory is taken
    assert export(ExportConfig(checkpoint=str(runs["cho2014"]), output=str(tmp_path / "empty"), check=False)
                  ) == tmp_path / "empty"
    assert (tmp_path / "empty" / "manifest.json").is_file()


@needs_onnx
def test_python_api(runs: dict[str, Path], exports: dict[str, Path]) -> None:  # noqa: F811
    ort_model = nmt_api.load(exports["cho2014"], backend="onnxruntime")
    torch_model = nmt_api.load(runs["cho2014"])
    assert ort_model.translate(SENTENCES, beam=3) == torch_model.translate(SENTENCES, beam=3)
    assert ort_model.source_lang == "xx" and ort_model.device == torch.device("cpu")
    with pytest.raises(NMTError, match="backend=torch"):
        ort_model.score(["ka lo"], ["cat dog"])
    with pytest.raises(NMTError, match="backend=torch"):
        ort_model.analyze("ka lo")
    with pytest.raises(NMTError, match="CPU"):
        nmt_api.load(exports["cho2014"], backend="onnxruntime", device="cuda")


def test_without_onnx_installed_the_commands_say_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(NMTError, match=r"pip install 'nmt\[onnx\]'"):
        export(ExportConfig(checkpoint="x", output=str(tmp_path / "out")))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "nmt-onnx-1", "graphs": {}}), encoding="utf-8")
    with pytest.raises(NMTError, match=r"backend=onnxruntime needs onnxruntime: pip install 'nmt\[onnx\]'"):
        OrtModel(*read_manifest(tmp_path))


@needs_onnx
def test_bench_runs_on_a_tiny_model(runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    from nmt.bench.onnx import main

    src, ref = tmp_path / "in.xx", tmp_path / "ref.yy"
    src.write_text("ka lo mi\nne ru\n", encoding="utf-8")
    ref.write_text("cat dog sun\nmoon tree\n", encoding="utf-8")
    report = main(["--checkpoint", str(runs["rnnsearch"]), "--src", str(src), "--ref", str(ref), "--repeats", "1",
                   "--output", str(tmp_path / "bench.json")])
    assert {r["backend"] for r in report["rows"]} == {"torch", "torch-int8", "onnxruntime"}
    assert {r["decode"] for r in report["rows"]} == {"greedy", "beam5"}
    assert all(r["sentences_per_s"] > 0 and "bleu" in r for r in report["rows"])
    assert 0 <= report["identical_greedy"]["onnxruntime"] <= 1
    assert json.loads((tmp_path / "bench.json").read_text())["rows"]
