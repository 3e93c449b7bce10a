"""The ``nmt`` command: the only module that imports Hydra.

``nmt train [OVERRIDES]`` composes conf/train.yaml with Hydra overrides and calls nmt.train.train;
``nmt translate [OVERRIDES]`` composes conf/translate.yaml and runs nmt.translate.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import CompactHydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

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


# command -> (schema of its composed config, "module:function" run with the typed config)
COMMANDS: dict[str, tuple[type, str]] = {
    "train": (Config, "nmt.train:train"),
    "translate": (TranslateConfig, "nmt.translate_cli:run_translate"),
    "evaluate": (EvaluateConfig, "nmt.evaluate:evaluate"),
    "score": (ScoreConfig, "nmt.score:run_score"),
    "average": (AverageConfig, "nmt.average:run_average"),
}


def register_configs() -> None:
    """Typed schemas for the composed configs, so Hydra rejects unknown keys at composition time."""
    for command, (schema, _) in COMMANDS.items():
        ConfigStore.instance().store(name="config_schema" if command == "train" else f"{command}_schema", node=schema)


def to_config(cfg: DictConfig, schema: type = Config):
    """Resolve a composed DictConfig into the typed dataclass the library uses."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, schema), type(obj)
    return obj


def make_task(command: str):
    """The Hydra task of ``command``: build its typed config and run it, turning input errors into one line on
    stderr and exit status 2 (Hydra would print a traceback)."""
    schema, target = COMMANDS[command]
    module, function = target.split(":")

    def task(cfg: DictConfig) -> None:
        try:
            getattr(importlib.import_module(module), function)(to_config(cfg, schema))
        except MissingMandatoryValue as err:
            print(f"nmt {command}: error: missing value for {err.full_key}: give it on the command line "
                  f"({err.full_key}=...)", file=sys.stderr)
            sys.exit(2)
        except NMTError as err:
            print(f"nmt {command}: error: {err}", file=sys.stderr)
            sys.exit(2)
        except OSError as err:  # a full disk, a read-only folder, a file that vanished: one line too
            if isinstance(err, BrokenPipeError):  # `nmt translate ... | head`: not an error of ours to report
                raise
            where = f": {err.filename}" if err.filename else ""
            print(f"nmt {command}: error: {err.strerror or err}{where}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            sys.exit(130)

    return task


def config_error_line(err: Exception) -> str:
    """Hydra's multi-line composition error as one line: its message, the options of a missing group
    choice, and the first line of the OmegaConf error behind it."""
    lines = [line.strip() for line in str(err).split("Config search path")[0].splitlines()
             if line.strip() and not line.startswith("To append")]  # appending a key fails on our schemas anyway
    if isinstance(err, MissingConfigException) and err.options:
        lines = [lines[0], f"options: {', '.join(err.options)}"]
    cause = str(err.__cause__ or "").strip()
    if cause:
        lines.append(cause.splitlines()[0])
    return "; ".join(line.rstrip(".") for line in lines) or type(err).__name__


def check_overrides(command: str, argv: list[str]) -> None:
    """Compose the config once before Hydra runs it, so that an unknown key or group option, or a value of the
    wrong type, is a one-line NMTError (exit status 2) instead of Hydra's report (exit status 1). Command lines
    with flags (--help, --multirun, ...) are left to Hydra."""
    if any(arg.startswith("-") for arg in argv):
        return
    register_configs()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            compose(command, overrides=argv, return_hydra_config=True)
    except (CompactHydraException, OmegaConfBaseException) as err:
        raise NMTError(f"bad command line: {config_error_line(err)}") from None


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
    if command not in COMMANDS:
        print(f"nmt: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    try:
        check_overrides(command, rest)
        run_hydra(make_task(command), command, rest)
    except NMTError as err:
        print(f"nmt {command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
