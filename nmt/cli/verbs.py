"""The ``nmt`` command's verbs: each a small function that runs one command with its typed config, and the
table (COMMANDS) that nmt.cli.main gives Hydra. Each imports its stack when called, so that `nmt translate` does
not load the training stack."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nmt.config import (
    AverageConfig,
    BenchConfig,
    Config,
    EvaluateConfig,
    ExportConfig,
    PlotConfig,
    ScoreConfig,
    TranslateConfig,
)
from nmt.serve.config import ServeConfig

USAGE = """usage: nmt COMMAND [ARGS]

GRU RNN Encoder-Decoder (Cho et al. 2014) and RNNsearch (Bahdanau et al. 2015) for machine translation.

commands:
  train      train a model (Hydra overrides, e.g. `nmt train data=multi30k train.max_minutes=60`);
             `nmt train --help` lists the config groups and every key with its value
  translate  translate text with a trained model
             (`nmt translate checkpoint=runs/bible-es-en-small input=in.es output=out.en decode=beam5`)
  evaluate   translate test sets and report BLEU, chrF and TER with sacrebleu
             (`nmt evaluate checkpoint=runs/bible-es-en-small splits=[dev,test] decode=beam5`)
  score      log p(y|x) of sentence pairs (total and per piece), or score a Moses n-best list or phrase table
             (`nmt score checkpoint=runs/x src=a.es tgt=a.en`, `nmt score checkpoint=runs/x src=a.es nbest=nb.txt`)
  average    average the parameters of a run's last k step checkpoints (`nmt average run=runs/x k=5`)
  export     write a checkpoint as ONNX graphs for onnxruntime (`nmt export checkpoint=runs/x output=runs/x-onnx`,
             then `nmt translate backend=onnxruntime checkpoint=runs/x-onnx`)
  plot       draw a PNG of a trained run: attention, gates, curves or representations
             (`nmt plot attention run=runs/x sentence="Ein Hund läuft."`, `nmt plot curves run=runs/x`)
  bench      measure training and decoding speed, useful FLOP/s and memory (`make bench`)
  serve      translate over HTTP: LibreTranslate and OpenNMT APIs, a page with attention and gates
             (`nmt serve checkpoint=runs/bible-es-en-small`, then open http://127.0.0.1:8000/)
  help       show this message

Run `nmt COMMAND --help` for the options of a command: its config groups and every key with its comment.
Values are KEY=VALUE (any file name works); short flags: -c CHECKPOINT, -i INPUT, -o OUTPUT, -r RUN.
`nmt --version` prints the version; `eval "$(nmt --shell-completion install=bash)"` completes commands and keys.
"""


def run_train(cfg: Config) -> float:
    """Train; returns the best dev score (train.early_stop_metric), which ``--multirun hydra/sweeper=optuna``
    optimises (nan when the run never validated: Optuna counts the trial as failed)."""
    from nmt.training.train import train

    best = train(cfg).best
    return math.nan if best is None else float(best)


def run_translate(cfg: TranslateConfig) -> None:
    from nmt.cli.translate import run_translate

    run_translate(cfg)


def run_evaluate(cfg: EvaluateConfig) -> None:
    from nmt.evaluation.evaluate import evaluate

    evaluate(cfg)


def run_score(cfg: ScoreConfig) -> None:
    from nmt.evaluation import phrase_table, score

    (phrase_table.run_phrase_table if cfg.phrase_table else score.run_score)(cfg)


def run_average(cfg: AverageConfig) -> None:
    from nmt.training.average import run_average

    run_average(cfg)


def run_export(cfg: ExportConfig) -> None:
    from nmt.decoding.export import export

    print(f"wrote {export(cfg)}")


def run_plot(cfg: PlotConfig) -> None:
    from nmt.plot.run import run_plot

    run_plot(cfg)


def run_serve(cfg: ServeConfig) -> None:
    from nmt.serve.run import serve

    serve(cfg)


def run_bench(cfg: BenchConfig) -> None:
    from nmt.bench.run import bench

    bench(cfg)


# command -> (schema of its composed config, the verb run with the typed config; imported when called, so that
# `nmt translate` does not load the training stack)
COMMANDS: dict[str, tuple[type, Callable[[Any], Any]]] = {
    "train": (Config, run_train),
    "translate": (TranslateConfig, run_translate),
    "evaluate": (EvaluateConfig, run_evaluate),
    "score": (ScoreConfig, run_score),
    "average": (AverageConfig, run_average),
    "export": (ExportConfig, run_export),
    "plot": (PlotConfig, run_plot),
    "bench": (BenchConfig, run_bench),
    "serve": (ServeConfig, run_serve),
}
