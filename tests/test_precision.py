"""train.precision=auto: bf16 exactly where the device multiplies it natively, said in the log and the metrics."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmt.choices import Precision
from nmt.config import Config, DataConfig, TrainConfig
from nmt.runtime import precision
from nmt.training.run import setup
from nmt.training.train import fit

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, chosen", [(True, Precision.bf16), (False, Precision.fp32)])
def test_auto_takes_bf16_only_where_it_is_native(native: bool, chosen: Precision,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="nmt.train"):
        assert precision.resolve(Precision.auto, CPU, lambda _: native) == chosen
    assert f"train.precision=auto: {chosen.value}" in caplog.text


@pytest.mark.parametrize("asked", [Precision.fp32, Precision.bf16])
def test_an_explicit_precision_is_kept_whatever_the_hardware(asked: Precision) -> None:
    for native in (True, False):
        assert precision.resolve(asked, CPU, lambda _, n=native: n) == asked


def test_the_run_says_which_precision_it_trains_in(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nmt.runtime.precision.cpu_has_bf16", lambda: False)
    cfg = Config(data=tiny_data_cfg, train=replace(TrainConfig(), device="cpu", precision="auto", tensorboard=False,
                                                   max_steps=2, log_every=1),
                 run_dir=str(tmp_path / "run"))
    run = setup(cfg)
    assert run.precision == Precision.fp32 and not isinstance(run.autocast, torch.autocast)
    fit(run)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["precision"] for r in rows if r["kind"] == "train"} == {"fp32"}
