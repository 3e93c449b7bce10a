"""Faults during training and in checkpoints: NaN/inf losses, a full disk, a crash mid-save, pruning, hostile
and mismatched checkpoints. In-process on the tiny corpus, except where a real process must die."""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from test_cli import _env, last_line, nmt
from test_train import _config

from nmt import checkpoint
from nmt.cli.main import make_task
from nmt.config import DataConfig
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.training import train as train_loop
from nmt.training.run import Run, setup
from nmt.training.train import fit, train, update
from nmt.training.validate import DevScores

REPO_ROOT = Path(__file__).resolve().parents[1]


def _weights(run: Run) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in run.model.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- NaN / inf


def _poison_loss(run: Run, bad_steps: set[int]) -> list[dict[str, torch.Tensor]]:
    """Make the training loss NaN at the given steps (validation is left alone); returns the weights seen
    before each training step."""
    real, seen = run.model.loss, []

    def loss(batch, label_smoothing=0.0):
        value = real(batch, label_smoothing)
        if not run.model.training:
            return value
        seen.append(_weights(run))
        return value * float("nan") if run.state.step in bad_steps else value

    run.model.loss = loss
    return seen


def test_nan_loss_skips_the_update_and_training_goes_on(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    run = setup(_config(tiny_data_cfg, tmp_path / "run", max_steps=6, eval_every=100))
    seen = _poison_loss(run, {3, 4})
    with caplog.at_level(logging.WARNING, logger="nmt.train"):
        state = fit(run)
    assert state.step == 6 and state.skipped == 2 and state.bad_in_row == 0
    assert _equal(seen[2], seen[3]) and _equal(seen[3], seen[4])  # steps 3 and 4 changed nothing
    assert not _equal(seen[1], seen[2]) and not _equal(seen[4], _weights(run))  # the others did
    assert {int(s["step"]) for s in run.opt.state_dict()["state"].values()} == {4}  # Adam saw 4 of 6 batches
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 2 and "step 3: loss nan" in warnings[0] and "2 in a row" in warnings[1]
    assert checkpoint.read(tmp_path / "run" / "last.pt")["train_state"]["skipped"] == 2


def test_non_finite_gradient_skips_the_update(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """A finite loss whose gradient overflows is skipped too, also with clipping switched off."""
    run = setup(_config(tiny_data_cfg, tmp_path / "run", max_steps=2, eval_every=100, clip_norm=0.0))
    first = next(iter(run.model.parameters()))
    hook = first.register_hook(lambda g: torch.full_like(g, float("inf")))
    before = _weights(run)
    assert update(run, run.batches.make(run.batches.epoch(0)[0]))[0] is None  # (loss, tokens): no loss
    assert run.state.skipped == 1 and _equal(before, _weights(run))
    hook.remove()
    assert update(run, run.batches.make(run.batches.epoch(0)[1]))[0] is not None and run.state.bad_in_row == 0
    assert not _equal(before, _weights(run))


def test_nan_streak_stops_training_and_keeps_the_last_good_checkpoint(tiny_data_cfg: DataConfig,
                                                                      tmp_path: Path) -> None:
    cfg = _config(tiny_data_cfg, tmp_path / "run", max_steps=50, eval_every=2, max_bad_updates=3)
    run = setup(cfg)
    seen = _poison_loss(run, set(range(5, 100)))  # diverges after step 4
    with pytest.raises(NMTError) as err:
        fit(run)
    msg = str(err.value)
    assert "3 non-finite losses or gradients in a row (last at step 7" in msg and "last.pt" in msg
    assert "\n" not in msg
    last = checkpoint.read(tmp_path / "run" / "last.pt")  # validated at step 6, with step 4's weights
    assert last["step"] == 6 and last["train_state"]["bad_in_row"] == 2 and _equal(last["model"], seen[4])
    # the last good state resumes
    state = train(replace(cfg, train=replace(cfg.train, resume=True, max_steps=8)))
    assert state.step == 8 and state.skipped == 2 and state.bad_in_row == 0


# --------------------------------------------------------------------------- disk full, crash during a save


def _fail_saves_from_step(monkeypatch: pytest.MonkeyPatch, run: Run, step: int) -> None:
    """From update ``step`` on, every checkpoint write hits a full disk after writing a few bytes."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if run.state.step < step:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", save)


def test_disk_full_stops_training_with_one_line_and_keeps_checkpoints(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    run = setup(_config(tiny_data_cfg, run_dir, max_steps=6, eval_every=2))
    _fail_saves_from_step(monkeypatch, run, 4)
    with pytest.raises(NMTError) as err:
        fit(run)
    msg = str(err.value)
    assert "No space left on device" in msg and "the previous one is kept" in msg and "\n" not in msg
    monkeypatch.undo()
    assert checkpoint.read(run_dir / "last.pt")["step"] == 2
    assert checkpoint.read(run_dir / "best.pt")["step"] == 2
    assert [p.name for p in checkpoint.step_checkpoints(run_dir)] == ["step-2.pt"]
    assert _tmp_files(run_dir) == []
    # once there is space again, resuming ends exactly where an uninterrupted run does
    resumed = train(_config(tiny_data_cfg, run_dir, max_steps=6, eval_every=2, resume=True))
    straight = train(_config(tiny_data_cfg, tmp_path / "straight", max_steps=6, eval_every=2))
    assert resumed.step == straight.step == 6 and resumed.history == straight.history
    a, b = checkpoint.read(run_dir / "last.pt"), checkpoint.read(tmp_path / "straight" / "last.pt")
    assert _equal(a["model"], b["model"])


def test_disk_full_through_the_command_is_one_line_exit_2(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if obj.get("step", 0) >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    cfg = OmegaConf.structured(_config(tiny_data_cfg, tmp_path / "run", max_steps=6, eval_every=2))
    with pytest.raises(SystemExit) as exit_:
        make_task("train")(cfg)
    assert exit_.value.code == 2
    line = last_line(capsys.readouterr().err)
    assert line.startswith("nmt train: error: cannot write checkpoint") and "No space left on device" in line
    monkeypatch.undo()
    assert checkpoint.read(tmp_path / "run" / "last.pt")["step"] == 2


@pytest.mark.parametrize("target", ["replace", "fsync"])
def test_failure_at_rename_or_fsync_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              target: str) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save({"model": {"w": torch.ones(3)}, "step": 1}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(checkpoint.os, target, fail)
    with pytest.raises(NMTError, match=r"cannot write checkpoint .*last\.pt: Input/output error"):
        checkpoint.save({"model": {"w": torch.zeros(3)}, "step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and checkpoint.read(path)["step"] == 1
    assert _tmp_files(tmp_path) == []


def test_process_killed_mid_save_leaves_previous_checkpoint(tmp_path: Path) -> None:
    """SIGKILL while the new checkpoint is half written: no cleanup runs, the old file is still whole."""
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        from pathlib import Path
        from nmt import checkpoint
        path = Path({str(tmp_path / 'last.pt')!r})
        checkpoint.save({{"model": {{"w": torch.ones(1000)}}, "step": 1}}, path)
        def dying_save(obj, f, *args, **kwargs):
            f.write(b"PK\\x03\\x04" + bytes(5000))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        checkpoint.save({{"model": {{"w": torch.zeros(1000)}}, "step": 2}}, path)
        """)
    proc = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path), capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ckpt = checkpoint.read(tmp_path / "last.pt")
    assert ckpt["step"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(1000))
    assert len(_tmp_files(tmp_path)) == 1  # the half-written temporary; a resumed run deletes it


# --------------------------------------------------------------------------- keep the last k and the best


def _scripted_validation(monkeypatch: pytest.MonkeyPatch, bleus: list[float]) -> None:
    scores = iter(bleus)
    monkeypatch.setattr("nmt.training.train.validate",
                        lambda *a: DevScores(loss=1.0, ppl=2.7, bleu=next(scores), example=""))


def test_pruning_keeps_the_last_k_and_never_the_best(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted_validation(monkeypatch, [5.0, 1.0, 2.0, 1.0, 3.0, 1.0])  # the best is the first validation
    run_dir = tmp_path / "run"
    state = train(_config(tiny_data_cfg, run_dir, max_steps=6, eval_every=1, keep_last=2, patience=0))
    assert state.best_step == 1 and state.best == 5.0
    assert [p.name for p in checkpoint.step_checkpoints(run_dir)] == ["step-5.pt", "step-6.pt"]
    assert checkpoint.read(run_dir / "best.pt")["step"] == 1
    assert checkpoint.read(run_dir / "last.pt")["step"] == 6


def test_failed_step_checkpoint_deletes_no_older_one(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    run = setup(_config(tiny_data_cfg, run_dir, max_steps=6, eval_every=1, keep_last=1))
    _fail_saves_from_step(monkeypatch, run, 3)
    with pytest.raises(NMTError, match="No space left"):
        fit(run)
    monkeypatch.undo()
    assert [p.name for p in checkpoint.step_checkpoints(run_dir)] == ["step-2.pt"]  # the only one is kept
    assert checkpoint.read(run_dir / "step-2.pt")["step"] == 2


def test_resume_forgets_what_the_killed_run_wrote_after_last_pt(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(_config(tiny_data_cfg, run_dir, max_steps=4, eval_every=2, log_every=1))
    # what a run killed at step 5, during a save, leaves behind
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 5, "loss": 1.0}\n{"kind": "tr')
    checkpoint.save({"model": {}, "step": 6}, run_dir / "step-6.pt")
    (run_dir / ".last.pt.abc123.tmp").write_bytes(b"PK\x03\x04 partial")
    run = setup(_config(tiny_data_cfg, run_dir, max_steps=6, eval_every=2, log_every=1, resume=True))
    assert run.state.step == 4
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 2, 3, 4, 4]
    assert [p.name for p in checkpoint.step_checkpoints(run_dir)] == ["step-2.pt", "step-4.pt"]
    assert _tmp_files(run_dir) == []


# --------------------------------------------------------------------------- hostile checkpoints


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): what a hostile checkpoint would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _write_hostile(path: Path, marker: Path, kind: str) -> Path:
    obj = {"format": checkpoint.FORMAT, "model": {}, "payload": _RunsCode(marker)}
    if kind == "zip":
        torch.save(obj, path)
    elif kind == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw-pickle"])
def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    path = _write_hostile(tmp_path / "evil.pt", marker, kind)
    # the file really is hostile: a full unpickler runs its code
    if kind == "raw-pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.is_dir()
    marker.rmdir()
    with pytest.raises(NMTError, match=r"evil\.pt"):
        checkpoint.read(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["translate", "evaluate", "score"])
def test_commands_refuse_a_hostile_checkpoint(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    _write_hostile(run / "best.pt", marker, "zip")
    (tmp_path / "in.txt").write_text("hola\n")
    extra = {"translate": ["input=in.txt"], "evaluate": ["splits=[]", "src=in.txt", "ref=in.txt"],
             "score": ["src=in.txt", "tgt=in.txt"]}[command]
    out = nmt(command, f"checkpoint={run}", *extra, cwd=tmp_path)
    assert out.returncode == 2
    line = last_line(out.stderr)
    assert line.startswith(f"nmt {command}: error: corrupt or unsafe checkpoint") and "best.pt" in line
    assert "Traceback" not in out.stderr and not marker.exists()
    assert "weights_only" not in out.stderr and "Warning" not in out.stderr  # no advice to unpickle it anyway


def test_resume_refuses_a_hostile_last_pt(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    marker = tmp_path / "pwned"
    _write_hostile(run_dir / "last.pt", marker, "zip")
    with pytest.raises(NMTError, match=r"unsafe checkpoint .*last\.pt"):
        train(_config(tiny_data_cfg, run_dir, resume=True))
    assert not marker.exists()


# --------------------------------------------------------------------------- mismatched checkpoints


def test_resume_refuses_another_vocabulary(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    train(_config(tiny_data_cfg, tmp_path / "run", max_steps=2, eval_every=2))
    for change, expected in ((dict(vocab_size=50), "data.vocab_size: checkpoint 40 vs requested 50"),
                             (dict(tgt_lang="zz"), "data.tgt_lang: checkpoint 'yy' vs requested 'zz'"),
                             (dict(joint_vocab=False), "data.joint_vocab: checkpoint True vs requested False")):
        cfg = _config(replace(tiny_data_cfg, **change), tmp_path / "run", resume=True)
        with pytest.raises(NMTError, match=expected):
            train(cfg)
    cfg = _config(tiny_data_cfg, tmp_path / "run", resume=True, max_steps=2)
    both = replace(cfg, data=replace(cfg.data, vocab_size=30), model=replace(cfg.model, hidden_dim=18))
    with pytest.raises(NMTError, match="hidden_dim: checkpoint 16 vs requested 18; data.vocab_size"):
        train(both)
    moved = replace(cfg, data=replace(cfg.data, max_len=50))  # not a vocabulary setting: allowed
    assert train(moved).step == 2


def _saved_run(tiny_data_cfg: DataConfig, tmp_path: Path) -> dict:
    train(_config(tiny_data_cfg, tmp_path / "run", max_steps=1, eval_every=1))
    return checkpoint.read(tmp_path / "run" / "best.pt")


def test_translator_names_what_does_not_fit(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    ckpt = _saved_run(tiny_data_cfg, tmp_path)
    cases = {
        "vocab": ({**ckpt, "model_info": {**ckpt["model_info"], "tgt_vocab": 41}},
                  r"tokenizer \(40, 40 pieces\) and model \(40, 41\) disagree"),
        "weights": ({**ckpt, "model_info": {**ckpt["model_info"],
                                            "config": {**ckpt["model_info"]["config"], "hidden_dim": 17}}},
                    "weights do not fit its model settings: size mismatch"),
        "incomplete": ({k: v for k, v in ckpt.items() if k != "tokenizer"}, "incomplete or damaged checkpoint"),
        "bad-spm": ({**ckpt, "tokenizer": {"src": b"junk", "tgt": b"junk"}}, "incomplete or damaged checkpoint"),
    }
    for name, (bad, expected) in cases.items():
        path = tmp_path / f"{name}.pt"
        checkpoint.save({k: v for k, v in bad.items() if k != "format"}, path)
        with pytest.raises(NMTError, match=expected) as err:
            Translator.open(str(path))
        assert f"{name}.pt" in str(err.value) and "\n" not in str(err.value), name


# --------------------------------------------------------------------------- a signal at a validation step


@pytest.mark.parametrize("stop_at", [3, 4], ids=["between-validations", "at-a-validation"])
def test_signal_then_resume_equals_uninterrupted_run(tiny_data_cfg: DataConfig, tmp_path: Path, stop_at: int) -> None:
    """SIGTERM during update ``stop_at`` saves that step; resuming (which first runs a validation the signal
    pre-empted) ends where an uninterrupted run does."""
    kw = dict(max_steps=8, eval_every=2, plateau_patience=1)
    run = setup(_config(tiny_data_cfg, tmp_path / "run", **kw))
    real = run.model.loss

    def loss(batch, label_smoothing=0.0):
        if run.model.training and run.state.step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(batch, label_smoothing)

    run.model.loss = loss
    assert fit(run).step == stop_at
    assert checkpoint.read(tmp_path / "run" / "last.pt")["step"] == stop_at
    resumed = train(_config(tiny_data_cfg, tmp_path / "run", resume=True, **kw))
    straight = train(_config(tiny_data_cfg, tmp_path / "straight", **kw))
    assert resumed.history == straight.history and resumed.lr_scale == straight.lr_scale
    a, b = checkpoint.read(tmp_path / "run" / "last.pt"), checkpoint.read(tmp_path / "straight" / "last.pt")
    assert _equal(a["model"], b["model"])


def test_disk_full_outside_checkpoints_is_one_line_exit_2(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    metrics = tmp_path / "run" / "metrics.jsonl"

    def full(self, kind, values):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(metrics))

    monkeypatch.setattr(Run, "log_metrics", full)
    with pytest.raises(SystemExit) as exit_:
        make_task("train")(OmegaConf.structured(_config(tiny_data_cfg, tmp_path / "run", max_steps=4, eval_every=2)))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == f"nmt train: error: No space left on device: {metrics}"


# --------------------------------------------------------------------------- damaged checkpoints: no silent fallback


def test_corrupt_last_pt_stops_resume(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(_config(tiny_data_cfg, run_dir, max_steps=2, eval_every=2))
    data = (run_dir / "last.pt").read_bytes()
    (run_dir / "last.pt").write_bytes(data[: len(data) // 2])
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir())
    with pytest.raises(NMTError, match=r"corrupt or unsafe checkpoint .*last\.pt"):
        train(_config(tiny_data_cfg, run_dir, max_steps=4, eval_every=2, resume=True))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir()) == before  # nothing started afresh


def test_corrupt_best_pt_is_an_error_not_a_fallback_to_last_pt(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(_config(tiny_data_cfg, run_dir, max_steps=2, eval_every=2))
    (run_dir / "best.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(NMTError, match=r"best\.pt"):
        Translator.open(str(run_dir))



def test_second_ctrl_c_during_the_final_save_keeps_the_previous_last_pt(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """Ctrl-C at step 5 asks for a clean stop; a second Ctrl-C while that stop writes last.pt interrupts the
    write: exit status 130, last.pt of step 4 whole, no temporary file left."""
    cfg = _config(tiny_data_cfg, tmp_path / "run", max_steps=50, eval_every=4)
    real_update, real_save = train_loop.update, torch.save

    def update(run, batch):
        if run.state.step == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(run, batch)

    def save(obj, f, *args, **kwargs):
        if obj["step"] == 5:
            f.write(b"PK\x03\x04 partial")
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(train_loop, "update", update)
    monkeypatch.setattr(checkpoint.torch, "save", save)
    with pytest.raises(SystemExit) as exit_:
        make_task("train")(OmegaConf.structured(cfg))
    assert exit_.value.code == 130
    monkeypatch.undo()
    assert checkpoint.read(tmp_path / "run" / "last.pt")["step"] == 4
    assert _tmp_files(tmp_path / "run") == []
