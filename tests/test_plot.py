"""`nmt plot`: each picture is written from a trained run, and the numbers behind it are right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import last_line, nmt, train_args

from nmt.config import DecodeConfig, PlotConfig
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model.rnn import run_rnn
from nmt.plot import attention, curves, gates, representations
from nmt.plot.run import run_plot

PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["model.emb_dim=8", "model.hidden_dim=16", "model.maxout_dim=6", "model.attention_dim=8",
        "train.max_steps=20", "train.eval_every=10"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, corpus_writer: Callable[..., Path]) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("plot")
    corpus_writer(tmp / "corpus")
    out = {}
    for arch in ("rnnsearch", "small"):
        out[arch] = tmp / arch
        done = nmt(*train_args(tmp / "corpus", out[arch], tmp / "cache", f"model={arch}", *TINY), cwd=tmp)
        assert done.returncode == 0, done.stderr
    (tmp / "phrases.xx").write_text("\n".join(["ka lo", "mi ne ru", "ta", "po si vu de", "ka ka", "", "lo mi"]) + "\n")
    return out


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 2000 and path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("kind", ["attention", "gates", "curves", "representations"])
def test_every_plot_is_written_from_an_rnnsearch_run(runs: dict[str, Path], kind: str, tmp_path: Path) -> None:
    run = runs["rnnsearch"]
    pc = PlotConfig(kind=kind, run=str(run), sentence="ka lo mi ne", input=str(run.parent / "phrases.xx"),
                    output=str(tmp_path / f"{kind}.png"))
    assert _is_png(run_plot(pc))


def test_plot_command_writes_into_the_run_and_takes_any_sentence(runs: dict[str, Path]) -> None:
    run = runs["rnnsearch"]
    out = nmt("plot", "attention", f"run={run}", "sentence=ka lo, \"mi\" ne's ${x} \\", cwd=run.parent)
    assert out.returncode == 0, out.stderr
    assert _is_png(run / "plots" / "attention.png")


def test_cho2014_run_plots_gates_but_has_no_attention(runs: dict[str, Path], tmp_path: Path) -> None:
    run = runs["small"]
    pc = PlotConfig(kind="gates", run=str(run), sentence="ka lo mi", output=str(tmp_path / "g.png"))
    assert _is_png(run_plot(pc))
    out = nmt("plot", "attention", f"run={run}", "sentence=ka lo", cwd=tmp_path)
    assert out.returncode == 2 and "no attention" in last_line(out.stderr)


def test_attention_rows_are_distributions_over_the_source(runs: dict[str, Path]) -> None:
    t = Translator.open(str(runs["rnnsearch"]))
    src, tgt, w = attention.attention_matrix(t, "ka lo mi ne", DecodeConfig())
    assert w.shape == (len(tgt), len(src)) and tgt[-1] == "</s>"
    assert np.allclose(w.sum(1), 1.0, atol=1e-5) and (w >= 0).all()


@pytest.mark.parametrize("arch", ["rnnsearch", "small"])
def test_gate_trace_reproduces_the_encoder(runs: dict[str, Path], arch: str) -> None:
    """Stepping the gate equations over a sentence ends in the state the fused encoder GRU computes."""
    model = Translator.open(str(runs[arch])).model
    x = model.encoder.embed(torch.tensor([5, 6, 7, 8, 9]))
    states, r, z = gates.gate_trace(model.encoder.rnn, x, model.cfg.reset_after)
    with torch.no_grad():
        out, _ = run_rnn(model.encoder.rnn, x.unsqueeze(0))
    assert torch.allclose(states, out[0, :, : states.shape[1]], atol=1e-5)  # forward half for the bidirectional one
    assert ((r >= 0) & (r <= 1) & (z >= 0) & (z <= 1)).all()


def test_gates_follow_the_reading_order(runs: dict[str, Path]) -> None:
    t = Translator.open(str(runs["small"]))  # reads the source right to left
    words, r, z = gates.encoder_gates(t, "ka lo mi")
    pieces = [t.tokenizer.src.id_to_piece(i) for i in t.tokenizer.encode_src(["ka lo mi"])[0]]
    assert words == pieces[::-1] and words[0] != words[-1]
    assert r.shape == z.shape == (len(pieces), t.model.cfg.hidden_dim)


def test_pca_finds_the_direction_of_largest_spread() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([10.0, 3.0, 0.1, 0.1, 0.1])
    points, explained = representations.pca2(x)
    assert points.shape == (200, 2) and explained[0] > explained[1] > 0.05
    assert abs(np.corrcoef(points[:, 0], x[:, 0])[0, 1]) > 0.99
    with pytest.raises(NMTError, match="at least 3"):
        representations.pca2(x[:2])


def test_summaries_have_one_row_per_phrase(runs: dict[str, Path]) -> None:
    t = Translator.open(str(runs["small"]))
    s = representations.summaries(t, ["ka lo", "mi", "ne ru ta"], batch=2)
    assert s.shape == (3, t.model.cfg.hidden_dim)
    assert np.allclose(s[1], representations.summaries(t, ["mi"])[0], atol=1e-6)  # padding changes nothing


def test_metrics_reader_names_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="not found"):
        curves.read_metrics(tmp_path / "metrics.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "train", "step": 1, "loss": 2.0}\n{oops\n')
    with pytest.raises(NMTError, match=r"bad.jsonl:2"):
        curves.read_metrics(bad)


def test_plot_errors_are_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    out = nmt("plot", "gates", f"run={runs['small']}", cwd=tmp_path)
    assert out.returncode == 2 and "sentence=" in last_line(out.stderr)
    out = nmt("plot", "heatmap", f"run={runs['small']}", cwd=tmp_path)
    expected = "'heatmap', expected one of [attention, gates, curves, representations, gradients]"
    assert out.returncode == 2 and expected in last_line(out.stderr)


def test_gradients_by_distance_for_three_units(tiny_data_cfg, tmp_path: Path) -> None:
    from dataclasses import replace

    from nmt.config import Config, ModelConfig, TrainConfig
    from nmt.plot.gradients import gradient_by_distance
    from nmt.training.train import train

    tc = replace(TrainConfig(), max_steps=4, eval_every=4, batch_tokens=300, tensorboard=False, keep_last=0)
    runs = []
    for unit in ("gru", "lstm", "elman"):
        model = replace(ModelConfig(), emb_dim=8, hidden_dim=12, maxout_dim=6, cell_type=unit)
        train(Config(data=tiny_data_cfg, model=model, train=tc, name=unit, run_dir=str(tmp_path / unit)))
        runs.append(tmp_path / unit)
    t = Translator.open(str(runs[0]))
    n = max(len(ids) for ids in t.tokenizer.encode_src(["ka lo mi ne", "ru"]))  # the longer source's pieces
    norms = gradient_by_distance(t, ["ka lo mi ne", "ru"], ["cat dog sun moon", "tree"], max_distance=n + 2)
    assert norms.shape == (n + 2,) and np.all(norms[:n] > 0) and np.all(np.isnan(norms[n:]))
    out = tmp_path / "g.png"
    run_plot(PlotConfig(kind="gradients", run=f"[{runs[0]},{runs[1]},{runs[2]}]", output=str(out), max_phrases=8))
    assert out.stat().st_size > 10_000
