"""The Python API (nmt.api, exported by ``import nmt``): loading, translating with keyword options, n-best
lists, scoring, analysis, composing and training; none of it changes process-wide state; the README's
"From Python" example runs as it stands."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import nmt
from nmt.config import Config, ModelConfig, TrainConfig
from nmt.errors import NMTError

REPO = Path(__file__).resolve().parents[1]


def _config(data, run_dir: Path, **train) -> Config:
    model = replace(ModelConfig(), emb_dim=8, hidden_dim=16, maxout_dim=6, dropout=0.0)
    tc = replace(TrainConfig(), **{"batch_tokens": 300, "max_steps": 30, "eval_every": 15, "log_every": 5,
                                   "tensorboard": False, "threads": "1", **train})
    return Config(data=data, model=model, train=tc, name="api", run_dir=str(run_dir))


def _process_state() -> tuple:
    handlers = tuple(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM))
    return torch.get_num_threads(), handlers, dict(os.environ)


def test_the_api_trains_translates_and_scores_without_touching_the_process(tiny_data_cfg, tmp_path: Path) -> None:
    torch.set_num_threads(2)  # a caller's own choice, which train.threads=1 must not override through the API
    importlib.import_module("torch._dynamo")  # torch sets TORCHINDUCTOR_CACHE_DIR when it first loads this, as
    # its optimizers do: torch's doing, not nmt's
    before = _process_state()
    result = nmt.train(_config(tiny_data_cfg, tmp_path / "run"))
    assert result.run_dir == tmp_path / "run" and result.best == tmp_path / "run" / "best.pt" and result.step == 30
    assert [s for s, _ in result.dev] == [15, 30] and result.best_score == max(v for _, v in result.dev)
    losses = [row["loss"] for row in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
              if row["kind"] == "train"]
    assert losses[-1] < losses[0]  # it learned something
    model = nmt.load(result.run_dir, device="cpu")
    assert (model.source_lang, model.target_lang, model.device) == ("xx", "yy", torch.device("cpu"))
    one, many = model.translate("ka lo mi"), model.translate(["ka lo mi", "", "ne ru"], beam=3)
    assert isinstance(one, str) and len(many) == 3 and many[1] == ""
    nbest = model.translate("ka lo mi", n_best=3)
    assert len(nbest) == 3 and [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
    assert all(math.isfinite(h.logprob) for h in nbest)
    lp = model.score(["ka lo mi", "ne ru"], ["cat dog sun", "moon tree"])
    assert len(lp) == 2 and all(math.isfinite(x) and x < 0 for x in lp)
    with pytest.raises(NMTError, match="decode.alignment needs a model with attention"):
        model.align(["ka lo mi"])  # a Cho 2014 model has no attention
    analysis = model.analyze("ka lo mi", method="beam", n_best=2)
    assert analysis["translation"] == nbest[0].text
    assert len(analysis["gates"]["update"]) == len(analysis["source_pieces"]) > 0
    after = _process_state()
    assert after[:2] == before[:2]  # torch's threads and the SIGINT/SIGTERM handlers
    assert {k for k in {*after[2], *before[2]} if after[2].get(k) != before[2].get(k)} == set()  # the environment


def test_bad_options_are_named(tiny_data_cfg, tmp_path: Path) -> None:
    result = nmt.train(_config(tiny_data_cfg, tmp_path / "run", max_steps=2, eval_every=2))
    model = nmt.load(result.best)
    with pytest.raises(NMTError, match=r"decode\.beam=0 is out of range"):
        model.translate("ka", beam=0, method="beam")
    with pytest.raises(TypeError, match="unknown decoding option"):
        model.translate("ka", bean=5)
    with pytest.raises(NMTError, match="checkpoint not found"):
        nmt.load(tmp_path / "nope.pt")


def test_compose_gives_the_config_nmt_train_would_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = nmt.compose("model=rnnsearch", "train.lr=3e-4", "name=x")
    assert isinstance(cfg, Config) and cfg.model.arch == "rnnsearch" and cfg.train.lr == 3e-4
    assert cfg.run_dir == "runs/x" and not (tmp_path / "runs").exists()
    with pytest.raises(NMTError, match=r"train\.lr=-1\.0 is out of range"):
        nmt.compose("train.lr=-1")
    with pytest.raises(NMTError, match="train.optimizr"):
        nmt.compose("train.optimizr=adam")


def test_importing_nmt_loads_nothing_heavy() -> None:
    code = "import sys, nmt; print('torch' in sys.modules, nmt.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", nmt.__version__]


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "HOME": str(tmp_path)}  # nmt's sentencepiece cache under ~/.cache: a fresh one
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    lines = lines[max(i for i, line in enumerate(lines) if line.startswith("done (")) + 1 :]  # after training's
    assert lines[0].startswith("runs/from-python/best.pt ")
    assert len(lines) == 1 + 1 + 3 + 1 + 1  # the run; one translation list; three n-best lines; a score; gates
    assert float(lines[5].strip("[]")) < 0  # a log-probability
