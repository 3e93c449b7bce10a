"""A training process killed at a random step (SIGKILL: no cleanup; SIGTERM: the clean stop) and resumed with
``train.resume=true`` ends bit-identical to a run that was never interrupted: weights, optimizer, schedule,
early-stopping state, best score, RNG states, checkpoints on disk and metrics."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_cli import _env, train_args

from nmt import checkpoint

pytestmark = pytest.mark.slow

# far longer than the kill range (steps 6-30), so the signal lands mid-run; eval_every 4 puts last.pt before it;
# patience and plateau_patience make early stopping and the schedule move during the run
ARGS = ("train.max_steps=150", "train.eval_every=4", "train.log_every=1", "train.keep_last=3",
        "train.patience=25", "train.plateau_patience=1", "model.hidden_dim=24")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, corpus_writer: Callable[..., Path]) -> Path:
    tmp = tmp_path_factory.mktemp("kill")
    corpus_writer(tmp / "corpus", {"train": 200, "dev": 8, "test": 8})
    return tmp


def nmt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m nmt ARGS``, with room for a machine busy with other work (the runs take seconds when idle)."""
    return subprocess.run([sys.executable, "-m", "nmt", *args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=1200)


def _args(work: Path, run: Path, *extra: str) -> list[str]:
    return train_args(work / "corpus", run, work / "nmt-cache", *ARGS, *extra)


@pytest.fixture(scope="module")
def straight(work: Path) -> Path:
    """The uninterrupted run."""
    out = nmt(*_args(work, work / "straight"), cwd=work)
    assert out.returncode == 0, out.stderr
    return work / "straight"


def _train_rows(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_text().count('"kind": "train"') if path.exists() else 0


def _stop_at_random_step(work: Path, run: Path, sig: signal.Signals, seed: int) -> int:
    """Start training, send ``sig`` once a random number of updates is logged and last.pt exists; returns the
    step it was aimed at. A run that ends first (a stalled test process) is started again, up to three times."""
    rng = random.Random(seed)
    for _ in range(3):
        target = rng.randint(6, 30)
        shutil.rmtree(run, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-m", "nmt", *_args(work, run)], cwd=work, env=_env(work),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 1200
        while not ((run / "last.pt").exists() and _train_rows(run) >= target) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            break
        proc.communicate()
    else:
        pytest.fail(f"training ended before the signal three times (seed {seed})")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=1200)
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 0
    assert proc.returncode == expected, (target, err[-2000:])
    if sig == signal.SIGTERM:
        assert "stopped by SIGTERM" in out and "train.resume=true" in out
    return target


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("tgt_tok_s", "elapsed_s")} for r in rows]


def _assert_same_tensors(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_and_resumed_run_equals_uninterrupted_run(work: Path, straight: Path, tmp_path: Path,
                                                         sig: signal.Signals) -> None:
    seed = random.randrange(10**6)
    run = tmp_path / "run"
    target = _stop_at_random_step(work, run, sig, seed)
    at_stop = checkpoint.read(run / "last.pt")["step"]
    final = checkpoint.read(straight / "last.pt")
    assert 4 <= at_stop < final["step"], (seed, target, at_stop)
    if sig == signal.SIGTERM:  # the clean stop saves the step it was at, not only the last validation
        assert at_stop >= target, (seed, target, at_stop)

    out = nmt(*_args(work, run, "train.resume=true"), cwd=work)
    assert out.returncode == 0, out.stderr
    assert f"resumed {run / 'last.pt'} at step {at_stop}" in out.stdout + out.stderr

    got = checkpoint.read(run / "last.pt")
    why = f"{sig.name}, seed {seed}: stopped at step {target}, resumed from {at_stop}"
    for key in ("model", "optimizer", "rng", "step"):
        _assert_same_tensors(got[key], final[key], f"{why}: {key}")
    drop_time = ("elapsed_s",)
    assert {k: v for k, v in got["train_state"].items() if k not in drop_time} == {
        k: v for k, v in final["train_state"].items() if k not in drop_time}, why
    assert [p.name for p in checkpoint.step_checkpoints(run)] == [p.name for p in checkpoint.step_checkpoints(straight)]
    for name in ["best.pt", *(p.name for p in checkpoint.step_checkpoints(straight))]:
        a, b = checkpoint.read(run / name), checkpoint.read(straight / name)
        assert a["step"] == b["step"], (why, name)
        _assert_same_tensors(a["model"], b["model"], f"{why}: {name}")
    assert _metrics(run) == _metrics(straight), why
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
