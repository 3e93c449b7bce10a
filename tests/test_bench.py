"""`nmt bench` on a tiny run: every figure is measured, in its own process, and adds up."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from test_cli import nmt, train_args

from nmt.bench import run as bench
from nmt.bench.contention import busy_neighbour, settings
from nmt.config import BenchConfig, TrainConfig

TINY = ["data=files", "data.local_dir=null", "data.src_lang=xx", "data.tgt_lang=yy", "data.vocab_size=40",
        "model.emb_dim=8", "model.hidden_dim=16", "model.maxout_dim=6", "model.attention_dim=8",
        "train.batch_tokens=200"]


@pytest.mark.slow  # eleven fresh processes, each importing torch: about two minutes
def test_bench_measures_training_decoding_and_the_ceiling(tmp_path: Path, corpus_writer: Callable[..., Path]) -> None:
    corpus = corpus_writer(tmp_path / "corpus")
    trained = nmt(*train_args(corpus, tmp_path / "run", tmp_path / "cache", "model=rnnsearch", "model.attention_dim=8",
                              "train.max_steps=10"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    out = nmt("bench", *TINY, f"data.path={corpus}", f"data.cache_dir={tmp_path / 'cache'}", "threads=1",
              "ceiling_size=256", "warmup=1", "measure=3", f"checkpoint={tmp_path / 'run'}", "dev_after_tokens=20000",
              "contention_warmup=2", "contention_measure=3", f"output={tmp_path / 'bench.json'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "bench.json").read_text())
    t = res["train"]
    assert t["updates"] == 3 and t["tgt_tok_s"] > 0 and t["src_tgt_tok_s"] > t["tgt_tok_s"] and t["params"] > 0
    assert 0 <= t["padding_share"] < 1 and t["useful_gflop_s"] > 0 and t["peak_rss_mb"] > 50
    assert all(v > 0 for v in res["ceiling"].values())
    assert set(res["decode"]) == {"greedy fp32", "beam 5 fp32", "greedy int8", "beam 5 int8"}
    for row in res["decode"].values():
        assert row["sentences_s"] > 0 and 0 <= row["bleu"] <= 100
    dev = res["dev"]
    assert dev["train_tokens"] >= 20000 and dev["updates"] > 0 and dev["dev_pieces"] > 0
    assert dev["dev_ppl"] < 40  # a uniform guess over the 40 pieces would be 40: something was learned
    assert "| training target tok/s" in out.stdout and "useful training GFLOP/s" in out.stdout
    c = res["contention"]
    for where in ("alone", "busy"):
        assert set(c[where]) == set(settings(c["cores"])) and all(v > 0 for v in c[where].values())
        assert c[f"auto_share_{where}"] > 0 and 1 <= c["auto_threads"][where] <= c["cores"]
    assert "training tgt tok/s beside 1 busy process" in out.stdout


def test_busy_neighbour_runs_for_the_block_only() -> None:
    """The contention rows' neighbour spins a core while the block runs and is gone after it."""
    before = os.times().children_user
    with busy_neighbour() as proc:
        time.sleep(1.0)
        assert proc is not None and proc.poll() is None
    assert proc.returncode is not None  # killed and reaped
    assert os.times().children_user - before > 0.3  # it was busy, not asleep
    with busy_neighbour(False) as none:
        assert none is None
    assert settings(2) == ["1", "2", "auto"] and settings(1) == ["1", "auto"]


def test_bf16_training_adds_the_bf16_ceiling_and_its_share() -> None:
    bc = BenchConfig(ceiling_size=64, train=replace(TrainConfig(), precision="bf16"))
    ceiling = bench._ceiling(bc)
    assert "large bf16" in ceiling and ceiling["large bf16"] > 0 and "large bf16" not in bench._ceiling(BenchConfig(
        ceiling_size=64))
    train = {"tgt_tok_s": 1.0, "src_tgt_tok_s": 2.0, "s_per_update": 1.0, "sentences_per_update": 1.0,
             "tgt_tokens_per_update": 1.0, "padding_share": 0.1, "useful_gflop_s": 90.0, "peak_rss_mb": 1.0}
    text = bench.table({"cpu": "cpu", "threads": "2", "torch": "2", "config": asdict(bc), "train": train,
                        "ceiling": {"large": 100.0, "large bf16": 300.0}})
    assert "| bf16 matmul 64x64x64" in text and "| bf16 (bf16 in use) |" in text
    assert "90% of the 64^3 fp32 matmul ceiling, 30% of the bf16 one" in text


def test_bench_reports_a_missing_checkpoint_in_one_line(tmp_path: Path, corpus_writer: Callable[..., Path]) -> None:
    corpus = corpus_writer(tmp_path / "corpus")
    out = nmt("bench", *TINY, f"data.path={corpus}", f"data.cache_dir={tmp_path / 'cache'}", "threads=1",
              "warmup=0", "measure=1", f"checkpoint={tmp_path / 'nope'}",
              f"output={tmp_path / 'b.json'}", cwd=tmp_path)
    assert out.returncode == 2
    assert "checkpoint not found" in out.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "b.json").exists()  # refused before any measurement


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
