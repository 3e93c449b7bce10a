"""``nmt train --multirun`` with Hydra's sweeper and launcher plugins (hydra-optuna-sweeper, hydra-submitit-launcher):
the checks nmt.cli.main makes before Hydra runs, so that a search space with a bad key or value, an Optuna study
that would optimise the wrong way, or a plugin setting without ``--multirun`` is one line, not a failure in a job.

The training task returns its best dev score (train.early_stop_metric: BLEU, higher is better; loss, lower is
better), which is what the Optuna sweeper optimises (conf/sweep/optuna.yaml)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.errors import NMTError

BASIC = "hydra._internal.core_plugins."  # Hydra's own sweeper and launcher, which a single run also composes
NAME_MAX = 255  # bytes in one file name (Linux, macOS)


class JobRefused(CompactHydraException):
    """A --multirun job refused with one line (an NMTError in the task): raised, not exited on, so that the sweeper
    decides (Hydra's basic one stops; Optuna counts a failed trial against hydra.sweeper.max_failure_rate), and a
    submitit job hands it back to the sweep in its result file."""


def in_multirun() -> bool:
    """Whether this task runs as a --multirun job."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def refusals_as_errors() -> Iterator[None]:
    """Let a --multirun job's refusal reach nmt as an NMTError (one line, exit status 2, as a refused run): Hydra
    would print it with a hint about HYDRA_FULL_ERROR after it, unless HYDRA_FULL_ERROR=1, which also lets it out."""
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    except JobRefused as err:
        raise NMTError(str(err)) from None
    except CompactHydraException as err:  # a trial's values that do not compose, say: its first line and cause
        lines = [str(err).strip().splitlines()[0], *str(err.__cause__ or "").strip().splitlines()[:1]]
        raise NMTError("; ".join(lines)) from None
    finally:
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


def first_value(parsed: Override) -> str:
    """The first value of a sweep override as ``key=value``: a list's or range's first, an interval's start."""
    if parsed.is_interval_sweep():
        return f"{parsed.get_key_element()}={parsed.value().start}"  # a tag(log, ...) interval: its start too
    return f"{parsed.get_key_element()}={next(iter(parsed.sweep_string_iterator()))}"


def first_of_params(composed: DictConfig) -> list[str]:
    """The Optuna search space of ``hydra.sweeper.params`` (``key: interval(a, b)`` ...) as overrides of its first
    values, so a bad key or a value out of range is refused before the first trial."""
    params = OmegaConf.select(composed, "hydra.sweeper.params", default=None)
    out = []
    for key, value in (params or {}).items():
        parsed = OverridesParser.create().parse_override(f"{key}={value}")
        out.append(first_value(parsed) if parsed.is_sweep_override() else f"{key}={value}")
    return out


def check_plugins(composed: DictConfig, multirun: bool) -> None:
    """Refuse a sweeper or launcher plugin without ``--multirun`` (Hydra would ignore it and train once), and an
    Optuna direction that does not match what the task returns (train.early_stop_metric)."""
    sweeper = str(OmegaConf.select(composed, "hydra.sweeper._target_", default=""))
    launcher = str(OmegaConf.select(composed, "hydra.launcher._target_", default=""))
    for kind, target in (("sweeper", sweeper), ("launcher", launcher)):
        if target and not target.startswith(BASIC) and not multirun:
            choice = OmegaConf.select(composed, f"hydra.runtime.choices.hydra/{kind}", default=None)
            raise NMTError(f"hydra/{kind}={choice or target.rsplit('.', 1)[-1]} runs only with --multirun "
                           "(without it Hydra runs the command once)")
    if "optuna" not in sweeper.lower():
        return
    metric = OmegaConf.select(composed, "train.early_stop_metric", default=None)
    if metric is None:
        raise NMTError("the Optuna sweeper optimises what each run returns: only nmt train returns a score")
    metric = str(metric)
    wanted = "maximize" if metric == "bleu" else "minimize"
    direction = OmegaConf.select(composed, "hydra.sweeper.direction")
    name = getattr(direction, "name", str(direction))  # Optuna's config holds a Direction enum or its name
    if name != wanted:
        better = "higher" if metric == "bleu" else "lower"
        raise NMTError(f"hydra.sweeper.direction={name}, but each run returns its best dev {metric} "
                       f"(train.early_stop_metric), {better} is better: pass hydra.sweeper.direction={wanted}")


def check_job_dir(composed: DictConfig) -> None:
    """Refuse a job folder (``hydra.sweep.subdir``, by default every override of the command line) whose name is
    too long for the file system: Hydra would fail with a traceback in the first job."""
    try:
        subdir = str(OmegaConf.select(composed, "hydra.sweep.subdir", throw_on_missing=True))
    except OmegaConfBaseException:  # ${hydra.job.num} and the like: known once Hydra launches the job
        return
    longest = max((len(part.encode()) for part in subdir.split("/")), default=0)
    if longest > NAME_MAX:
        raise NMTError(f"each --multirun job's folder would be named by all {longest} characters of its overrides "
                       f"(at most {NAME_MAX}): pass 'hydra.sweep.subdir=${{hydra.job.num}}' to number them")


def torchrun_env_from_submitit() -> None:
    """In a submitit job of several tasks (hydra.launcher.tasks_per_node, nodes), one process per GPU: set the
    variables torchrun would give each (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from Slurm's, so
    that the job trains data-parallel (nmt.training.distributed). Nothing elsewhere, or under torchrun."""
    if "SUBMITIT_EXECUTOR" not in os.environ or "WORLD_SIZE" in os.environ:
        return
    import submitit  # the launcher plugin's dependency: present whenever SUBMITIT_EXECUTOR is set

    if submitit.JobEnvironment().num_tasks > 1:
        # every GPU stays visible: nmt takes cuda:LOCAL_RANK itself
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
