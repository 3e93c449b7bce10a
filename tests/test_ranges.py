"""Every numeric config key has a range, checked when the config is built: a value outside it is one line naming
the key, the value and the range, exit status 2, before Hydra creates anything."""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import pytest

from nmt.choices import RANGES, Checked
from nmt.cli.main import main
from nmt.config import (
    AverageConfig,
    BenchConfig,
    DataConfig,
    DecodeConfig,
    EvaluateConfig,
    ExportConfig,
    ModelConfig,
    PlotConfig,
    ScoreConfig,
    TrainConfig,
    TranslateConfig,
)
from nmt.errors import ConfigValueError
from nmt.serve.config import ServeConfig

CONFIGS = [DataConfig, ModelConfig, TrainConfig, DecodeConfig, TranslateConfig, EvaluateConfig, ScoreConfig,
           AverageConfig, PlotConfig, BenchConfig, ServeConfig, ExportConfig]

# command line -> the start of the one line after "nmt COMMAND: error: "
BAD = {
    "lr": (["train", "train.lr=-1"], "train.lr=-1.0 is out of range: must be > 0"),
    "hidden_dim": (["train", "model.hidden_dim=0"], "model.hidden_dim=0 is out of range: must be >= 1"),
    "dropout": (["train", "model.dropout=1.5"], "model.dropout=1.5 is out of range: must be in [0, 1)"),
    "eval_every": (["train", "train.eval_every=0"], "train.eval_every=0 is out of range: must be >= 1"),
    "max_minutes": (["train", "train.max_minutes=-5"], "train.max_minutes=-5.0 is out of range: must be >= 0"),
    "batch_tokens": (["train", "train.batch_tokens=0"], "train.batch_tokens=0 is out of range: must be >= 1"),
    "label_smoothing": (["train", "train.label_smoothing=1"],
                        "train.label_smoothing=1.0 is out of range: must be in [0, 1)"),
    "adam_betas": (["train", "train.adam_betas=[0.9,1.5]"], "train.adam_betas[1]=1.5 is out of range: must be in"),
    "plateau_factor": (["train", "train.plateau_factor=0"],
                       "train.plateau_factor=0.0 is out of range: must be in (0, 1]"),
    "vocab_size": (["train", "data.vocab_size=0"], "data.vocab_size=0 is out of range: must be >= 1"),
    "multirun": (["train", "--multirun", "train.lr=-1,0.1"], "train.lr=-1.0 is out of range"),
    "alpha": (["translate", "checkpoint=x", "decode.alpha=nan"],
              "decode.alpha=nan is out of range: must be finite and >= 0"),
    "beam": (["translate", "checkpoint=x", "decode=beam5", "decode.beam=0"],
             "decode.beam=0 is out of range: must be >= 1"),
    "evaluate": (["evaluate", "checkpoint=x", "decode.max_len_ratio=0"], "decode.max_len_ratio=0.0 is out of range"),
    "score": (["score", "checkpoint=x", "weight=inf"], "weight=inf is out of range: must be finite"),
    "port": (["serve", "checkpoint=x", "port=70000"], "port=70000 is out of range: must be in [0, 65535]"),
    "average": (["average", "run=x", "k=0"], "k=0 is out of range: must be >= 1"),
    "plot": (["plot", "curves", "run=x", "units=0"], "units=0 is out of range: must be >= 1"),
    "bench": (["bench", "measure=0"], "measure=0 is out of range: must be >= 1"),
    "export": (["export", "checkpoint=x", "output=y", "opset=9"], "opset=9 is out of range: must be in [14, 20]"),
}


@pytest.mark.parametrize(("argv", "expected"), BAD.values(), ids=BAD.keys())
def test_out_of_range_is_one_line_exit_2_and_creates_nothing(argv: list[str], expected: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)  # where runs/ and multirun/ would appear
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main([*argv, f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"nmt {argv[0]}: error: {expected}"), err
    assert not run_dir.exists() and not any(tmp_path.iterdir())


def test_beam_zero_is_a_beam_problem_not_an_n_best_one() -> None:
    with pytest.raises(ConfigValueError) as err:
        DecodeConfig(method="beam", beam=0)
    assert str(err.value).startswith("decode.beam=0") and "n_best" not in str(err.value)


@pytest.mark.parametrize("make", [
    lambda: DecodeConfig(alpha=0.0, min_len=0, max_len_extra=0),
    lambda: TrainConfig(label_smoothing=0.0, plateau_factor=1.0, max_minutes=0.0, clip_norm=0.0, adam_betas=(0.0, 0.0)),
    lambda: DataConfig(character_coverage=1.0),
    lambda: ServeConfig(port=0, batch_wait_ms=0.0),
    lambda: ServeConfig(port=65535),
    lambda: ScoreConfig(weight=-3.0),
], ids=["decode", "train", "data", "port-0", "port-65535", "weight"])
def test_the_ends_of_the_ranges_are_allowed(make: typing.Callable[[], object]) -> None:
    make()


def _numeric(kind: object) -> bool:
    """int or float (not bool), or a tuple of them."""
    if typing.get_origin(kind) is tuple:
        return all(_numeric(k) for k in typing.get_args(kind) if k is not Ellipsis)
    return kind in (int, float)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_key_has_a_range_its_default_is_in(cls: type) -> None:
    assert issubclass(cls, Checked), f"{cls.__name__} does not check its fields"
    hints = typing.get_type_hints(cls)
    numeric = {f.name: f for f in fields(cls) if _numeric(hints[f.name])}
    ranges = RANGES.get(cls.__name__, {})
    missing = sorted(set(numeric) - set(ranges))
    assert not missing, f"{cls.__name__}: give {missing} a range in nmt.choices.RANGES"
    assert set(ranges) <= set(numeric), f"{cls.__name__}: RANGES names no such number {set(ranges) - set(numeric)}"
    for name, f in numeric.items():
        assert f.default is not MISSING, f"{cls.__name__}.{name}"
        for value in f.default if isinstance(f.default, tuple) else [f.default]:
            assert ranges[name].holds(value), f"{cls.__name__}.{name}: its default {value} is outside {ranges[name]}"
    for f in fields(cls):  # a nested config is one of those walked here, so its keys are checked too
        nested = hints[f.name]
        if is_dataclass(nested):
            assert nested in CONFIGS or not any(_numeric(h) for h in typing.get_type_hints(nested).values()), nested


def test_every_class_in_the_table_is_a_config() -> None:
    assert set(RANGES) == {cls.__name__ for cls in CONFIGS}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_float_must_be_finite(value: float) -> None:
    with pytest.raises(ConfigValueError, match=r"^train\.min_lr=.* is out of range: must be finite and >= 0$"):
        TrainConfig(min_lr=value)
