"""Typed configuration: one dataclass per config group (nmt.config.runs: a training run; nmt.config.commands: the
commands that use a trained model, and decoding; nmt.config.export: ``nmt export`` and the decoding backends).
Everything is importable from here."""

from nmt.config.commands import (
    AverageConfig,
    BenchConfig,
    DecodeConfig,
    EvaluateConfig,
    PlotConfig,
    ScoreConfig,
    TranslateConfig,
)
from nmt.config.export import Backend, ExportConfig
from nmt.config.runs import Config, DataConfig, ModelConfig, SplitNames, TrainConfig

__all__ = ["AverageConfig", "Backend", "BenchConfig", "Config", "DataConfig", "DecodeConfig", "EvaluateConfig",
           "ExportConfig", "ModelConfig", "PlotConfig", "ScoreConfig", "SplitNames", "TrainConfig", "TranslateConfig"]
