"""The ``nmt`` command: the only module that imports Hydra.

``nmt train [OVERRIDES]`` composes conf/train.yaml with Hydra overrides and calls nmt.training.train.train;
``nmt translate [OVERRIDES]`` composes conf/translate.yaml and runs nmt.decoding.translate; the other commands
(COMMANDS) work the same way. ``nmt plot KIND [OVERRIDES]`` is short for ``nmt plot kind=KIND ...``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import platform
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from nmt.cli import sweep
from nmt.cli.args import prepare_argv
from nmt.cli.help import verb_help
from nmt.cli.verbs import COMMANDS, USAGE
from nmt.config import Config
from nmt.errors import NMTError
from nmt.resources import conf_dir

CONF_DIR = str(conf_dir())

def register_configs() -> None:
    """Typed schemas for the composed configs, so Hydra rejects unknown keys at composition time."""
    for command, (schema, _) in COMMANDS.items():
        ConfigStore.instance().store(name="config_schema" if command == "train" else f"{command}_schema", node=schema)


def to_config(cfg: DictConfig, schema: type = Config):
    """Resolve a composed DictConfig into the typed dataclass the library uses."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, schema), type(obj)
    return obj


def make_task(command: str, new_dir: Path | None = None):
    """The Hydra task of ``command``: build its typed config and run it, turning input errors into one line on
    stderr and exit status 2 (Hydra would print a traceback). ``new_dir``: a folder Hydra creates for this run
    (the run directory, or the first missing folder above it); a refused run removes it, leaving nothing."""
    schema, verb = COMMANDS[command]

    def refuse(message: str) -> None:
        if sweep.in_multirun():  # the sweeper reports it (and Optuna may go on: hydra.sweeper.max_failure_rate)
            raise sweep.JobRefused(message)
        print(f"nmt {command}: error: {message}", file=sys.stderr)
        if new_dir is not None and new_dir.is_dir() and all(p.is_dir() or p.suffix == ".log"
                                                            for p in new_dir.rglob("*")):
            shutil.rmtree(new_dir, ignore_errors=True)
        sys.exit(2)

    def task(cfg: DictConfig) -> float | None:  # train returns its best dev score, which a sweeper optimises
        try:
            if command == "train":
                sweep.torchrun_env_from_submitit()  # a submitit job of several tasks trains data-parallel
            return verb(to_config(cfg, schema))
        except MissingMandatoryValue as err:
            refuse(missing_line(err))
        except NMTError as err:
            refuse(str(err))
        except OSError as err:  # a full disk, a read-only folder, a file that vanished: one line too
            if isinstance(err, BrokenPipeError):  # `nmt translate ... | head`: not an error of ours to report
                raise
            refuse(f"{err.strerror or err}{f': {err.filename}' if err.filename else ''}")
        except KeyboardInterrupt:
            sys.exit(130)

    return task


def missing_line(err: MissingMandatoryValue) -> str:
    """A ``???`` value left unset, as one line that says how to give it."""
    return f"missing value for {err.full_key}: give it on the command line ({err.full_key}=...)"


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


HYDRA_FLAGS_TO_CHECK = ("--multirun", "-m")  # flags whose overrides are still composed once before Hydra runs


def check_overrides(command: str, argv: list[str]) -> DictConfig | None:
    """Compose the config and build its typed config before Hydra runs, so that an unknown key or option, a value
    of the wrong type, missing or out of its range is a one-line NMTError (exit status 2), not Hydra's report
    (exit status 1) or a failure inside the task, and nothing (not even an empty run folder) is created. With
    --multirun, each sweep (and the sweeper's search space) is checked with its first value, and a sweeper's
    direction (nmt.cli.sweep); other flags (--help, --cfg, ...) are left to Hydra."""
    overrides = [a for a in argv if a not in HYDRA_FLAGS_TO_CHECK]
    if any(arg.startswith("-") for arg in overrides):
        return None
    multirun = len(overrides) < len(argv)
    if multirun:
        overrides = [_first_of_sweep(o) for o in overrides]
    register_configs()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            composed = compose(command, overrides=overrides, return_hydra_config=True)
            params = sweep.first_of_params(composed) if multirun else []  # an Optuna search space (nmt.cli.sweep)
            checked = compose(command, [*params, *overrides], return_hydra_config=True) if params else composed
        OmegaConf.to_object(without_hydra(checked))  # its checks (ranges, choices) refuse a value now
        sweep.check_plugins(composed, multirun)
        if multirun:
            sweep.check_job_dir(checked)
    except MissingMandatoryValue as err:
        raise NMTError(missing_line(err)) from None
    except (CompactHydraException, OmegaConfBaseException) as err:
        raise NMTError(f"bad command line: {config_error_line(err)}") from None
    return composed


def without_hydra(composed: DictConfig) -> DictConfig:
    """A copy of ``composed`` without its ``hydra`` node, and with a placeholder ``run_dir``: that one reads
    ``${hydra:runtime.output_dir}``, which has no value until Hydra runs the task."""
    cfg = copy.deepcopy(composed)
    with open_dict(cfg):
        del cfg["hydra"]
        if "run_dir" in cfg:
            cfg.run_dir = "<run directory>"
    return cfg


def _first_of_sweep(override: str) -> str:
    """``key=a,b`` (a --multirun sweep) as ``key=a``; other overrides as they are."""
    try:
        parsed = OverridesParser.create().parse_override(override)
    except (CompactHydraException, OmegaConfBaseException):
        return override  # composing reports it
    return sweep.first_value(parsed) if parsed.is_sweep_override() else override


def _first_missing(composed: DictConfig | None, argv: list[str]) -> Path | None:
    """The highest folder of the run directory that does not exist yet (Hydra will create it), for one run."""
    if composed is None or "--multirun" in argv or "-m" in argv:
        return None
    missing, path = None, Path(OmegaConf.select(composed, "hydra.run.dir", default=".")).absolute()
    while not path.exists():
        missing, path = path, path.parent
    return missing


def run_hydra(task, config_name: str, argv: list[str], argv0: str | None = None) -> None:
    """Run ``task`` as a Hydra app with ``argv`` as its command line."""
    register_configs()
    app = hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)(task)
    sys.argv = [argv0 or f"nmt {config_name}", *argv]
    multirun = any(a in HYDRA_FLAGS_TO_CHECK for a in argv)
    with sweep.refusals_as_errors() if multirun else contextlib.nullcontext():  # a refused job: one line
        app()


def shell_completion(argv: list[str]) -> None:
    """``nmt --shell-completion install=bash`` prints the bash script; the script asks ``nmt -sc query=bash``
    with the line in COMP_LINE, answered here with the command names, or by the command's own Hydra app."""
    words = os.environ.get("COMP_LINE", "nmt").split()
    if not any(a.startswith("query=") for a in argv):
        run_hydra(make_task("translate"), "translate", argv, argv0="nmt")  # the script names the `nmt` program
        return
    line = os.environ.get("COMP_LINE", "")
    if len(words) < 2 or (len(words) == 2 and not line.endswith(" ")):
        print(" ".join(c for c in COMMANDS if len(words) < 2 or c.startswith(words[1])))
        return
    if words[1] in COMMANDS:
        os.environ["COMP_LINE"] = "nmt " + line.split(None, 2)[2] if len(words) > 2 or line.endswith(" ") else "nmt "
        run_hydra(make_task(words[1]), words[1], argv, argv0="nmt")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna imports it, which logs each of its plugins
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if argv[0] in ("-V", "--version"):
        print(f"nmt {version('nmt')} (torch {version('torch')}, Python {platform.python_version()})")
        return
    if argv[0] in ("-sc", "--shell-completion"):
        shell_completion(argv)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"nmt: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    if any(a in ("-h", "--help") for a in rest):
        print(verb_help(command, Path(CONF_DIR)))
        return
    try:
        rest = prepare_argv(command, rest, COMMANDS[command][0])
        composed = check_overrides(command, rest)
        run_hydra(make_task(command, _first_missing(composed, rest)), command, rest)
    except NMTError as err:
        print(f"nmt {command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
