"""Typed configuration: one dataclass per config group (nmt.config.runs: a training run; nmt.config.commands: the
commands that use a trained model, and decoding). Everything is importable from here."""

from nmt.config.commands import (
    AverageConfig,
    BenchConfig,
    DecodeConfig,
    EvaluateConfig,
    PlotConfig,
    ScoreConfig,
    TranslateConfig,
)
from nmt.config.runs import Config, DataConfig, ModelConfig, SplitNames, TrainConfig

__all__ = ["AverageConfig", "BenchConfig", "Config", "DataConfig", "DecodeConfig", "EvaluateConfig", "ModelConfig",
           "PlotConfig", "ScoreConfig", "SplitNames", "TrainConfig", "TranslateConfig"]
