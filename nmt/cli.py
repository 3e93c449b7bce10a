"""The ``nmt`` command: the only module that imports Hydra.

``nmt train [OVERRIDES]`` composes conf/train.yaml with Hydra overrides and calls nmt.train.train;
``nmt translate [OVERRIDES]`` composes conf/translate.yaml and runs nmt.translate; the other commands
(COMMANDS) work the same way. ``nmt plot KIND [OVERRIDES]`` is short for ``nmt plot kind=KIND ...``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import CompactHydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from nmt.config import AverageConfig, BenchConfig, Config, EvaluateConfig, PlotConfig, ScoreConfig, TranslateConfig
from nmt.errors import NMTError

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

USAGE = """usage: nmt COMMAND [ARGS]

GRU RNN Encoder-Decoder (Cho et al. 2014) and RNNsearch (Bahdanau et al. 2015) for machine translation.

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
  plot       draw a PNG of a trained run: attention, gates, curves or representations
             (`nmt plot attention run=runs/x sentence="Ein Hund läuft."`, `nmt plot curves run=runs/x`)
  bench      measure training and decoding speed, useful FLOP/s and memory (`make bench`)
  help       show this message

Run `nmt COMMAND --help` for the options of a command.
"""


def run_train(cfg: Config) -> None:
    from nmt.train import train

    train(cfg)


def run_translate(cfg: TranslateConfig) -> None:
    from nmt.translate_cli import run_translate

    run_translate(cfg)


def run_evaluate(cfg: EvaluateConfig) -> None:
    from nmt.evaluate import evaluate

    evaluate(cfg)


def run_score(cfg: ScoreConfig) -> None:
    from nmt.score import run_score

    run_score(cfg)


def run_average(cfg: AverageConfig) -> None:
    from nmt.average import run_average

    run_average(cfg)


def run_plot(cfg: PlotConfig) -> None:
    from nmt.plot.run import run_plot

    run_plot(cfg)


def run_bench(cfg: BenchConfig) -> None:
    from nmt.bench import bench

    bench(cfg)


# command -> (schema of its composed config, the verb run with the typed config; imported when called, so that
# `nmt translate` does not load the training stack)
COMMANDS: dict[str, tuple[type, Callable[[Any], None]]] = {
    "train": (Config, run_train),
    "translate": (TranslateConfig, run_translate),
    "evaluate": (EvaluateConfig, run_evaluate),
    "score": (ScoreConfig, run_score),
    "average": (AverageConfig, run_average),
    "plot": (PlotConfig, run_plot),
    "bench": (BenchConfig, run_bench),
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
    schema, verb = COMMANDS[command]

    def task(cfg: DictConfig) -> None:
        try:
            verb(to_config(cfg, schema))
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


def quote_text_value(arg: str, key: str) -> str:
    """``key=free text`` as a quoted Hydra override, so any sentence (accents, punctuation, quotes) passes the
    override grammar unchanged; other arguments and already quoted values are returned as they are."""
    name, sep, value = arg.partition("=")
    if name != key or not sep or (len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""):
        return arg
    # Hydra's quoted strings: a quote and an interpolation start "${" are escaped by a backslash, and
    # backslashes are doubled only where they precede one of those or end the string
    escaped = re.sub(r"(\\*)('|\$\{|$)", lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""),
                     value)
    return f"{key}='{escaped}'"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command == "plot":
        if rest and "=" not in rest[0] and not rest[0].startswith("-"):
            rest = [f"kind={rest[0]}", *rest[1:]]  # `nmt plot attention ...` means kind=attention
        rest = [quote_text_value(a, "sentence") for a in rest]
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
