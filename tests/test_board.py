"""Tests for :mod:`nmt.training.board`: a training run's TensorBoard curves agree with its metrics file, and an
attention model's validations carry the attention picture."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.training.train import train


def _events(run_dir: Path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return events


def test_tensorboard_holds_the_metrics_and_the_attention(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    model = replace(ModelConfig(), arch="rnnsearch", emb_dim=8, hidden_dim=12, maxout_dim=6, attention_dim=10)
    tc = replace(TrainConfig(), max_steps=8, eval_every=4, log_every=2, batch_tokens=200, keep_last=0)
    train(Config(data=tiny_data_cfg, model=model, train=tc, name="tb", run_dir=str(tmp_path)))
    events = _events(tmp_path)
    assert {f"train/{k}" for k in ("loss", "ppl", "lr", "tgt_tok_s", "grad_norm")} | {"dev/loss", "dev/bleu"} <= set(
        events.Tags()["scalars"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for kind, name in (("train", "loss"), ("train", "grad_norm"), ("dev", "loss")):
        logged = [(row["step"], row[name]) for row in rows if row["kind"] == kind]
        board = [(e.step, e.value) for e in events.Scalars(f"{kind}/{name}")]
        assert [s for s, _ in board] == [s for s, _ in logged]
        assert [v for _, v in board] == pytest.approx([v for _, v in logged], rel=1e-5)
    assert [e.step for e in events.Images("dev/attention")] == [4, 8]


def test_tensorboard_can_be_turned_off(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    model = replace(ModelConfig(), emb_dim=8, hidden_dim=12, maxout_dim=6)
    tc = replace(TrainConfig(), max_steps=2, eval_every=2, batch_tokens=200, keep_last=0, tensorboard=False)
    train(Config(data=tiny_data_cfg, model=model, train=tc, name="tb", run_dir=str(tmp_path)))
    assert (tmp_path / "last.pt").is_file() and not (tmp_path / "tensorboard").exists()
