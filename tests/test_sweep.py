"""``nmt train --multirun`` with Hydra's plugins (nmt.cli.sweep): an Optuna search that optimises the runs' best dev
scores, submitit jobs (one, and one of two data-parallel tasks), a refused job as one line, and the checks made
before Hydra runs. The plugins are the ``sweep`` and ``slurm`` extras (in ``dev``); without them these tests skip."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from test_cli import last_line, nmt, train_args

from nmt.cli import sweep
from nmt.cli.main import _first_of_sweep, check_overrides
from nmt.errors import NMTError

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the sweep extra: pip install 'nmt[sweep]'")

# trial/job folders numbered (the overrides of these tiny runs would make a name longer than a file name may be)
NUMBERED = "hydra.sweep.subdir=${hydra.job.num}"
LOSS = ("train.early_stop_metric=loss", "hydra.sweeper.direction=minimize")  # dev loss differs between trials


def tiny(work: Path, *extra: str) -> list[str]:
    """``nmt train --multirun`` arguments of runs of 6 updates on the tiny corpus, with ``extra`` after them."""
    command, *args = train_args(work / "corpus", work / "unused", work / "nmt-cache", "train.tensorboard=false")
    return [command, "--multirun", *args, *extra]  # Hydra reads its flags before the overrides only


def best_dev(run: Path, metric: str) -> float:
    """The best dev score in a run's metrics.jsonl (BLEU: highest, loss: lowest)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scores = [r[metric] for r in rows if r["kind"] == "dev"]
    return max(scores) if metric == "bleu" else min(scores)


@pytest.fixture
def work(tmp_path: Path, corpus_writer: Callable[..., Path]) -> Path:
    corpus_writer(tmp_path / "corpus")
    return tmp_path


def test_optuna_sweep_of_two_trials_finds_the_best_run(work: Path) -> None:
    out = nmt(*tiny(work, "sweep=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={work / 's'}",
                    *LOSS), cwd=work)
    assert out.returncode == 0, out.stderr
    runs = sorted(p for p in (work / "s").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in runs] == ["0", "1"] and all((p / "best.pt").is_file() for p in runs)
    result = OmegaConf.load(work / "s" / "optimization_results.yaml")
    scores = {p.name: best_dev(p, "loss") for p in runs}
    assert result.best_value == min(scores.values())  # the task returned each run's best dev loss
    best = runs[min(scores, key=scores.get) == "1"]
    cfg = OmegaConf.load(best / "config.yaml")
    assert result.best_params["train.lr"] == cfg.train.lr and result.best_params["model.dropout"] == cfg.model.dropout
    assert "train.batch_tokens" not in result.best_params  # fixed on the command line: out of the search space


def test_a_refused_trial_is_one_line_and_exit_status_2(work: Path) -> None:
    args = tiny(work, "sweep=optuna", "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={work / 's'}")
    assert nmt(*args, cwd=work).returncode == 0
    out = nmt(*args, cwd=work)  # the same folders again: trial 0's already holds a run
    assert out.returncode == 2 and "Traceback" not in out.stderr and "HYDRA_FULL_ERROR" not in out.stderr
    assert last_line(out.stderr).startswith("nmt train: error: ") and "already holds a run" in out.stderr


def test_submitit_local_runs_one_job_and_returns_its_best_score(work: Path) -> None:
    pytest.importorskip("submitit", reason="the slurm extra: pip install 'nmt[slurm]'")
    out = nmt(*tiny(work, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", NUMBERED,
                    f"hydra.sweep.dir={work / 's'}", "train.early_stop_metric=loss"), cwd=work)
    assert out.returncode == 0, out.stderr
    (result,) = (work / "s" / ".submitit").glob("*/*_0_result.pkl")  # what the job handed back to the sweep
    outcome, job = pickle.loads(result.read_bytes())
    assert outcome == "success" and job.return_value == best_dev(work / "s" / "0", "loss")


def test_a_submitit_job_of_two_tasks_trains_data_parallel(work: Path) -> None:
    pytest.importorskip("submitit", reason="the slurm extra: pip install 'nmt[slurm]'")
    out = nmt(*tiny(work, "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
                    "hydra.launcher.timeout_min=5", NUMBERED, f"hydra.sweep.dir={work / 's'}"), cwd=work)
    assert out.returncode == 0, out.stderr
    log = (work / "s" / "0" / "main.log").read_text()
    assert "updates/epoch of 2 batches" in log  # two ranks: each update takes one batch from each


# --------------------------------------------------------------------------- checks before Hydra runs


def test_first_values_of_sweeps() -> None:
    assert _first_of_sweep("train.lr=tag(log, interval(1e-4, 1e-2))") == "train.lr=0.0001"
    assert _first_of_sweep("model.dropout=interval(0.1,0.5)") == "model.dropout=0.1"
    assert _first_of_sweep("train.batch_tokens=choice(512,1024)") == "train.batch_tokens=512"
    assert _first_of_sweep("train.lr=1e-3,3e-3") == "train.lr=0.001"


def test_the_shipped_search_maximises_bleu() -> None:
    composed = check_overrides("train", ["--multirun", "sweep=optuna"])
    assert composed.hydra.sweeper.direction == "maximize" and composed.train.early_stop_metric == "bleu"
    assert "train.lr" in composed.hydra.sweeper.params
    assert OmegaConf.to_container(composed.hydra.sweep)["subdir"] == "${hydra.job.num}"  # trials numbered


@pytest.mark.parametrize(("argv", "expected"), [
    (["--multirun", "hydra/sweeper=optuna"], "hydra.sweeper.direction=minimize, but each run returns its best dev "
                                             "bleu"),
    (["--multirun", "sweep=optuna", "train.early_stop_metric=loss"], "pass hydra.sweeper.direction=minimize"),
    (["sweep=optuna"], "hydra/sweeper=optuna runs only with --multirun"),
    (["hydra/launcher=submitit_slurm"], "hydra/launcher=submitit_slurm runs only with --multirun"),
    (["--multirun", "sweep=optuna", "model.dropout=interval(1.5, 2)"], "model.dropout=1.5 is out of range"),
    (["--multirun", "sweep=optuna", "hydra.sweeper.params={train.lrr: 'interval(0.1, 0.2)'}"], "train.lrr"),
    (["--multirun", "train.lr=1e-3,2e-3", "data.path=" + "x" * 250], "pass 'hydra.sweep.subdir=${hydra.job.num}'"),
])
def test_a_sweep_that_cannot_work_is_refused_in_one_line(argv: list[str], expected: str) -> None:
    with pytest.raises(NMTError) as err:
        check_overrides("train", argv)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_outside_submitit_nothing_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    sweep.torchrun_env_from_submitit()
    assert "WORLD_SIZE" not in os.environ
