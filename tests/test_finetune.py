"""Fine-tuning (nmt.training.finetune, ``train.init_from``): a run that starts from a trained model's weights and
tokenizer on new data, with a fresh optimizer, schedule and best score unless ``train.init_keep`` names them."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import XX_WORDS, YY_WORDS, synthetic_pairs, write_lines
from omegaconf import OmegaConf

from nmt import checkpoint
from nmt.cli.main import make_task
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.errors import NMTError
from nmt.training.run import setup
from nmt.training.train import fit, train
from nmt.training.validate import dev_cross_entropy

MODEL = {"emb_dim": 8, "hidden_dim": 16, "maxout_dim": 6, "dropout": 0.0}
TRAIN = {"batch_tokens": 300, "max_epochs": 100, "log_every": 100, "threads": "1", "device": "cpu",
         "tensorboard": False, "lr": 3e-3}


def _config(data: DataConfig, run_dir: Path, model: ModelConfig | None = None, **train_kw) -> Config:
    tc = replace(TrainConfig(), **{**TRAIN, "max_steps": 30, "eval_every": 30, **train_kw})
    return Config(data=data, model=model or replace(ModelConfig(), **MODEL), train=tc, run_dir=str(run_dir))


@pytest.fixture
def parent(tiny_data_cfg: DataConfig, tmp_path: Path) -> Path:
    """A trained run directory: 30 updates on the tiny xx->yy corpus (best.pt, last.pt at step 30)."""
    train(_config(tiny_data_cfg, tmp_path / "parent"))
    return tmp_path / "parent"


@pytest.fixture
def in_domain(tiny_data_cfg: DataConfig, tmp_path: Path) -> DataConfig:
    """The same two languages in another 'domain': sentences of the first five words only, translated in reverse
    word order (so the parent's monotone translations are wrong there)."""
    folder = tmp_path / "in-domain"
    for seed, (split, n) in enumerate({"train": 40, "dev": 8, "test": 4}.items(), start=10):
        src, tgt = synthetic_pairs(4 * n, seed)
        pairs = [(s, t) for s, t in zip(src, tgt, strict=True) if all(w in XX_WORDS[:5] for w in s.split())][:n]
        pairs = pairs or [(XX_WORDS[0], YY_WORDS[0])]
        write_lines(folder / f"{split}.xx", [s for s, _ in pairs])
        write_lines(folder / f"{split}.yy", [" ".join(reversed(t.split())) for _, t in pairs])
    return replace(tiny_data_cfg, name="in-domain", path=str(folder))


def _dev_loss(run) -> float:
    total, tokens = dev_cross_entropy(run.model.eval(), run.corpus, 300)
    run.model.train()
    return total / tokens


def test_fine_tuning_learns_the_new_domain_from_the_parent(parent: Path, in_domain: DataConfig, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The child starts with the parent's weights and tokenizer (no sentencepiece training), a fresh optimizer
    and step counter, takes the parent's model settings (given none), lowers the in-domain dev loss and records
    where it came from."""
    monkeypatch.setattr("nmt.data.prepare.train_or_load", lambda *a: pytest.fail("trained a new tokenizer"))
    cfg = _config(in_domain, tmp_path / "child", model=ModelConfig(), max_steps=25, eval_every=25,
                  init_from=str(parent))
    run = setup(cfg)
    best = checkpoint.read(parent / "best.pt")
    assert all(torch.equal(v, best["model"][k]) for k, v in run.model.state_dict().items())
    assert run.state.step == 0 and run.state.best is None and not run.opt.state  # all fresh
    assert (run.cfg.model.hidden_dim, run.cfg.model.dropout) == (16, 0.0)  # the parent's, not the defaults
    before = _dev_loss(run)
    fit(run)
    after = _dev_loss(run)
    assert after < 0.8 * before, (before, after)  # it learned the new domain
    child = tmp_path / "child"
    for name in ("src.model", "tgt.model"):
        assert (child / name).read_bytes() == (parent / name).read_bytes(), name
    last = checkpoint.read(child / "last.pt")
    assert last["tokenizer"] == best["tokenizer"] and last["step"] == 25
    assert last["init_from"] == {"path": str((parent / "best.pt").resolve()), "step": best["step"],
                                 "run": "default", "kept": []}
    assert json.loads((child / "config.json").read_text())["train"]["init_from"] == str((parent / "best.pt").resolve())
    pieces = set(checkpoint.read(child / "best.pt")["target_pieces"].tolist())
    assert set(best["target_pieces"].tolist()) <= pieces  # the parent's pieces stay allowed in search


def test_init_keep_takes_the_optimizer_and_schedule_from_a_last_pt(parent: Path, in_domain: DataConfig,
                                                                   tmp_path: Path) -> None:
    cfg = _config(in_domain, tmp_path / "child", init_from=str(parent / "last.pt"), init_keep=["optimizer", "schedule"],
                  max_steps=32, eval_every=32)
    run = setup(cfg)
    assert run.state.step == 30 and run.state.best is None  # the schedule goes on; the best score is fresh
    assert {int(s["step"]) for s in run.opt.state.values()} == {30}  # Adam's moments after 30 updates
    assert run.opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert fit(run).step == 32
    with pytest.raises(NMTError, match=r"needs a checkpoint with the training state \(a last.pt\)"):
        setup(replace(cfg, run_dir=str(tmp_path / "other"), train=replace(cfg.train, init_from=str(parent))))


def test_a_killed_fine_tuning_run_resumes_from_its_own_last_pt(parent: Path, in_domain: DataConfig, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The command that starts it (train.resume=true with init_from) continues it, bit for bit."""
    straight = train(_config(in_domain, tmp_path / "straight", init_from=str(parent), max_steps=6, eval_every=3))
    run_dir = tmp_path / "split"
    train(_config(in_domain, run_dir, init_from=str(parent), max_steps=3, eval_every=3, resume=True))
    with caplog.at_level(logging.INFO, logger="nmt.train"):
        resumed = train(_config(in_domain, run_dir, model=ModelConfig(), init_from=str(parent), max_steps=6,
                                eval_every=3, resume=True))
    assert "the run resumes from it" in caplog.text and f"resumed {run_dir / 'last.pt'} at step 3" in caplog.text
    assert resumed.step == straight.step == 6 and resumed.history == straight.history
    a, b = checkpoint.read(tmp_path / "straight" / "last.pt"), checkpoint.read(run_dir / "last.pt")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert a["init_from"] == b["init_from"]


def test_fine_tuning_refuses_another_architecture_or_language(parent: Path, in_domain: DataConfig,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(in_domain, tmp_path / "child", init_from=str(parent))
    with pytest.raises(NMTError, match=r"model.hidden_dim: checkpoint 16 vs requested 18"):
        setup(replace(cfg, model=replace(cfg.model, hidden_dim=18)))
    with pytest.raises(NMTError, match=r"another language pair \(data.src_lang: checkpoint 'xx' vs requested 'zz'"):
        setup(replace(cfg, data=replace(cfg.data, src_lang="zz")))
    with pytest.raises(SystemExit) as exit_:  # the command's task: one line, exit status 2, nothing written
        make_task("train")(OmegaConf.structured(replace(cfg, model=replace(cfg.model, arch="rnnsearch"))))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert "model.arch: checkpoint 'cho2014' vs requested 'rnnsearch'" in err and not (tmp_path / "child").exists()
