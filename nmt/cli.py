"""The ``nmt`` command: the only module that imports Hydra.

``nmt train [OVERRIDES]`` composes conf/train.yaml with Hydra overrides and calls nmt.train.train;
``nmt translate [OVERRIDES]`` composes conf/translate.yaml and runs nmt.translate.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nmt.config import AverageConfig, Config, EvaluateConfig, ScoreConfig, TranslateConfig
from nmt.errors import NMTError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

USAGE = """usage: nmt COMMAND [ARGS]

GRU RNN Encoder-Decoder (Cho et al. 2014) for machine translation.

commands:
  train      train a model (Hydra overrides, e.g. `nmt train data=multi30k train.max_minutes=60`);
             `nmt train --help` lists the config groups and every key with its value
  translate  translate text with a trained model
             (`nmt translate checkpoint=runs/bible-es-en-small input=in.es output=out.en decode=beam5`)
  evaluate   translate test sets and report BLEU, chrF and TER with sacrebleu
             (`nmt evaluate checkpoint=runs/bible-es-en-small splits=[dev,test] decode=beam5`)
  score      log p(y|x) of sentence pairs (total and per piece), or rescore a Moses n-best list
             (`nmt score checkpoint=runs/x src=a.es tgt=a.en`, `nmt score checkpoint=runs/x src=a.es nbest=nb.txt`)
  average    average the parameters of a run's last k step checkpoints (`nmt average run=runs/x k=5`)
  help       show this message

Run `nmt COMMAND --help` for the options of a command.
"""


def register_configs() -> None:
    """Typed schemas for the config groups, so Hydra rejects unknown keys at composition time."""
    ConfigStore.instance().store(name="config_schema", node=Config)
    ConfigStore.instance().store(name="translate_schema", node=TranslateConfig)
    ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)
    ConfigStore.instance().store(name="score_schema", node=ScoreConfig)
    ConfigStore.instance().store(name="average_schema", node=AverageConfig)


def to_config(cfg: DictConfig) -> Config:
    """Resolve a composed DictConfig into the typed Config the library uses."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, Config), type(obj)
    return obj


def _reported(command: str, task):
    """Run ``task`` inside the Hydra job, turning input errors into one line on stderr and exit status 2."""
    try:
        task()
    except MissingMandatoryValue as err:
        print(f"nmt {command}: error: missing value for {err.full_key}: give it on the command line "
              f"({err.full_key}=...)", file=sys.stderr)
        sys.exit(2)
    except NMTError as err:  # raised inside the Hydra job: report it in one line, not as a traceback
        print(f"nmt {command}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _train_main(cfg: DictConfig) -> None:
    from nmt.train import train

    _reported("train", lambda: train(to_config(cfg)))


def _translate_main(cfg: DictConfig) -> None:
    from nmt.translate_cli import run_translate

    def task() -> None:
        tc = OmegaConf.to_object(cfg)
        assert isinstance(tc, TranslateConfig)
        run_translate(tc)

    _reported("translate", task)


def _evaluate_main(cfg: DictConfig) -> None:
    from nmt.evaluate import evaluate

    def task() -> None:
        ec = OmegaConf.to_object(cfg)
        assert isinstance(ec, EvaluateConfig)
        evaluate(ec)

    _reported("evaluate", task)


def _score_main(cfg: DictConfig) -> None:
    from nmt.score import run_score

    def task() -> None:
        sc = OmegaConf.to_object(cfg)
        assert isinstance(sc, ScoreConfig)
        run_score(sc)

    _reported("score", task)


def _average_main(cfg: DictConfig) -> None:
    from nmt.average import run_average

    def task() -> None:
        ac = OmegaConf.to_object(cfg)
        assert isinstance(ac, AverageConfig)
        run_average(ac)

    _reported("average", task)


def run_hydra(task, config_name: str, argv: list[str]) -> None:
    """Run ``task`` as a Hydra app with ``argv`` as its command line."""
    register_configs()
    app = hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)(task)
    sys.argv = [f"nmt {config_name}", *argv]
    app()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    commands = {"train": (_train_main, "train"), "translate": (_translate_main, "translate"),
                "evaluate": (_evaluate_main, "evaluate"), "score": (_score_main, "score"),
                "average": (_average_main, "average")}
    if command not in commands:
        print(f"nmt: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    task, config_name = commands[command]
    try:
        run_hydra(task, config_name, rest)
    except NMTError as err:
        print(f"nmt {command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
