"""The ``nmt`` command: the only module that imports Hydra.

``nmt train [OVERRIDES]`` composes conf/train.yaml with Hydra overrides and calls nmt.train.train.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nmt.config import Config
from nmt.errors import NMTError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

USAGE = """usage: nmt COMMAND [ARGS]

GRU RNN Encoder-Decoder (Cho et al. 2014) for machine translation.

commands:
  train      train a model (Hydra overrides, e.g. `nmt train data=multi30k train.max_minutes=60`);
             `nmt train --help` lists the config groups and every key with its value
  help       show this message

Run `nmt COMMAND --help` for the options of a command.
"""


def register_configs() -> None:
    """Typed schemas for the config groups, so Hydra rejects unknown keys at composition time."""
    ConfigStore.instance().store(name="config_schema", node=Config)


def to_config(cfg: DictConfig) -> Config:
    """Resolve a composed DictConfig into the typed Config the library uses."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, Config), type(obj)
    return obj


def _train_main(cfg: DictConfig) -> None:
    from nmt.train import train

    try:
        train(to_config(cfg))
    except MissingMandatoryValue as err:
        print(f"nmt train: error: missing value for {err.full_key}: give it on the command line "
              f"({err.full_key}=...)", file=sys.stderr)
        sys.exit(2)
    except NMTError as err:  # raised inside the Hydra job: report it in one line, not as a traceback
        print(f"nmt train: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


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
    commands = {"train": (_train_main, "train")}
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
