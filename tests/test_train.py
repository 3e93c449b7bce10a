"""Tests for :mod:`nmt.training.train`: schedules and optimizers as pure functions, and ``train(cfg)`` in-process."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmt import checkpoint
from nmt.checkpoint import check_compatible
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.errors import NMTError
from nmt.training.optim import learning_rate, make_optimizer
from nmt.training.train import train

# --------------------------------------------------------------------------- learning rate


def test_constant_schedule_with_warmup() -> None:
    cfg = replace(TrainConfig(), lr=1e-3, schedule="constant", warmup_steps=4)
    assert [learning_rate(s, cfg, 1.0) for s in (1, 2, 4, 5, 1000)] == pytest.approx(
        [2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3])


def test_inverse_sqrt_schedule() -> None:
    cfg = replace(TrainConfig(), lr=1e-3, schedule="inverse_sqrt", warmup_steps=100)
    assert learning_rate(50, cfg, 1.0) == pytest.approx(5e-4)
    assert learning_rate(100, cfg, 1.0) == pytest.approx(1e-3)
    assert learning_rate(400, cfg, 1.0) == pytest.approx(5e-4)
    lrs = [learning_rate(s, cfg, 1.0) for s in range(100, 2000, 50)]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_plateau_scale_and_floor() -> None:
    cfg = replace(TrainConfig(), lr=1e-3, schedule="plateau", min_lr=1e-4)
    assert learning_rate(10, cfg, 0.5) == pytest.approx(5e-4)
    assert learning_rate(10, cfg, 1e-6) == pytest.approx(1e-4)  # never below min_lr


def test_unknown_schedule_and_optimizer() -> None:
    with pytest.raises(NMTError, match="cosine"):
        learning_rate(1, replace(TrainConfig(), schedule="cosine"), 1.0)
    with pytest.raises(NMTError, match="sgd"):
        make_optimizer(torch.nn.Linear(2, 3), replace(TrainConfig(), optimizer="sgd"))


@pytest.mark.parametrize(("name", "cls"), [("adam", torch.optim.Adam), ("adadelta", torch.optim.Adadelta)])
def test_make_optimizer(name: str, cls: type) -> None:
    opt = make_optimizer(torch.nn.Linear(2, 3), replace(TrainConfig(), optimizer=name, lr=0.5))
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.5


def test_check_compatible_names_the_difference() -> None:
    ckpt = {"model_info": {"config": {"emb_dim": 8, "hidden_dim": 16, "maxout_dim": 6, "maxout_pool": 2,
                                      "reset_after": True}}}
    cfg = replace(ModelConfig(), emb_dim=8, hidden_dim=16, maxout_dim=6)
    check_compatible(ckpt, cfg)
    check_compatible(ckpt, replace(cfg, dropout=0.5))  # not a shape: allowed
    with pytest.raises(NMTError, match="hidden_dim: checkpoint 16 vs requested 32"):
        check_compatible(ckpt, replace(cfg, hidden_dim=32))


# --------------------------------------------------------------------------- train(cfg)


def _config(data: DataConfig, run_dir: Path, **train_kw) -> Config:
    model = replace(ModelConfig(), emb_dim=8, hidden_dim=16, maxout_dim=6, dropout=0.2)
    tc = replace(TrainConfig(), **{"max_steps": 6, "eval_every": 3, "batch_tokens": 400, "log_every": 100,
                                   **train_kw})
    return Config(data=data, model=model, train=tc, name="test", run_dir=str(run_dir))


@pytest.mark.parametrize("accumulate", [1, 2])
def test_resumed_run_equals_uninterrupted_run(tiny_data_cfg: DataConfig, tmp_path: Path, accumulate: int) -> None:
    """3 steps, stop, resume to 6 gives bit-identical weights to 6 steps in one go (rng, batches, optimizer); with
    gradient accumulation too (a checkpoint falls between updates, so the data position is an update's start)."""
    straight = train(_config(tiny_data_cfg, tmp_path / "straight", accumulate=accumulate))
    assert straight.step == 6 and straight.epoch >= 1  # crosses an epoch boundary
    train(_config(tiny_data_cfg, tmp_path / "split", max_steps=3, accumulate=accumulate))
    resumed = train(_config(tiny_data_cfg, tmp_path / "split", resume=True, accumulate=accumulate))
    assert resumed.step == 6
    a, b = checkpoint.read(tmp_path / "straight" / "last.pt"), checkpoint.read(tmp_path / "split" / "last.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["train_state"]["history"] == b["train_state"]["history"]
    assert math.isclose(a["optimizer"]["param_groups"][0]["lr"], b["optimizer"]["param_groups"][0]["lr"])


def test_resuming_a_finished_run_adds_no_update(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    train(_config(tiny_data_cfg, tmp_path / "run"))
    before = checkpoint.read(tmp_path / "run" / "last.pt")
    state = train(_config(tiny_data_cfg, tmp_path / "run", resume=True))
    assert state.step == 6 and [h[0] for h in state.history] == [3, 6]
    after = checkpoint.read(tmp_path / "run" / "last.pt")
    assert after["step"] == 6
    for name, tensor in before["model"].items():
        assert torch.equal(tensor, after["model"][name]), name


def test_resume_refuses_a_different_model(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    train(_config(tiny_data_cfg, tmp_path / "run", max_steps=2, eval_every=2))
    cfg = _config(tiny_data_cfg, tmp_path / "run", resume=True)
    with pytest.raises(NMTError, match="hidden_dim"):
        train(replace(cfg, model=replace(cfg.model, hidden_dim=18)))


def test_resume_without_checkpoint(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="last.pt"):
        train(_config(tiny_data_cfg, tmp_path / "empty", resume=True))


def test_length_filter_drops_long_pairs(tiny_data_cfg: DataConfig) -> None:
    from nmt.data.prepare import prepare

    full = prepare(tiny_data_cfg)
    short = prepare(replace(tiny_data_cfg, max_len=6), full.tokenizer)
    assert len(full.train_src) == full.n_train_raw == 60
    assert 0 < len(short.train_src) < 60
    assert all(0 < len(s) <= 6 and 0 < len(t) <= 6 for s, t in zip(short.train_src, short.train_tgt,
                                                                       strict=True))
    assert len(short.dev_src) == len(full.dev_src) == len(short.dev_refs) == 8  # dev is never filtered
    assert short.tokenizer.decode_tgt(short.dev_tgt) == short.dev_refs


def test_average_last_writes_the_mean_of_the_last_steps_and_validates_it(tiny_data_cfg: DataConfig,
                                                                        tmp_path: Path) -> None:
    train(_config(tiny_data_cfg, tmp_path, max_steps=6, eval_every=2, keep_last=3, average_last=3))
    steps = [checkpoint.read(tmp_path / f"step-{n}.pt")["model"] for n in (2, 4, 6)]
    averaged = checkpoint.read(tmp_path / "averaged.pt")
    for key, value in averaged["model"].items():
        assert torch.allclose(value, sum(s[key] for s in steps) / 3, atol=1e-6), key
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["of"] for r in rows if r["kind"] == "averaged"] == [["step-2.pt", "step-4.pt", "step-6.pt"]]
    with pytest.raises(NMTError, match="average_last=4 needs train.keep_last"):
        replace(TrainConfig(), keep_last=3, average_last=4)


def test_accumulate_is_at_least_1_and_init_keep_needs_init_from() -> None:
    with pytest.raises(NMTError, match=r"train.accumulate=0 is out of range: must be >= 1"):
        replace(TrainConfig(), accumulate=0)
    with pytest.raises(NMTError, match="train.init_keep is for fine-tuning"):
        replace(TrainConfig(), init_keep=["optimizer"])
    with pytest.raises(NMTError, match="unknown train.init_keep='moments'"):
        replace(TrainConfig(), init_from="run", init_keep=["moments"])
