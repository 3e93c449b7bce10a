"""The string options of the typed configs, as enums: a value outside the set fails when the config is composed
(Hydra names the allowed values), and code compares members, never free strings. :class:`Checked` gives the
same check to configs built in code, and refuses a number outside its :class:`Range` (:data:`RANGES`);
:func:`to_plain` turns a config back into plain values."""

from __future__ import annotations

import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

from nmt.errors import ConfigValueError


class Choice(str, Enum):
    """A string option with a fixed set of values: equal to its value, printed as it, and checked by Hydra
    when the config is composed (``Invalid value 'x', expected one of [...]``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def parse(cls, value: object, name: str) -> Choice:
        """``value`` as a member; a value outside the set is one line: ``unknown NAME='x': use a or b``."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigValueError(f"unknown {name}={value!r}: use {' or '.join(m.value for m in cls)}") from None


class Split(Choice):
    train = "train"
    dev = "dev"
    test = "test"


class DataFormat(Choice):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"
    parquet = "parquet"
    hub = "hub"


class SpmModelType(Choice):
    bpe = "bpe"
    unigram = "unigram"


class Arch(Choice):
    cho2014 = "cho2014"
    rnnsearch = "rnnsearch"


class CellType(Choice):
    gru = "gru"
    lstm = "lstm"
    elman = "elman"

    @property
    def gate_blocks(self) -> int:
        """G: the blocks of the unit's input and recurrent weights (r, z, n; i, f, g, o; one), in torch's layout."""
        return {"gru": 3, "lstm": 4, "elman": 1}[self.value]


class Cell(Choice):
    fused = "fused"
    equations = "equations"


class Init(Choice):
    cho2014 = "cho2014"
    torch = "torch"


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(Choice):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class DistBackend(Choice):
    auto = "auto"
    nccl = "nccl"
    gloo = "gloo"


class Optimizer(Choice):
    adam = "adam"
    adadelta = "adadelta"


class Schedule(Choice):
    constant = "constant"
    inverse_sqrt = "inverse_sqrt"
    plateau = "plateau"


class InitKeep(Choice):
    """What a fine-tuning run (``train.init_from``) takes from its parent besides weights and tokenizer."""

    optimizer = "optimizer"  # the optimizer's state (Adam's moments)
    schedule = "schedule"  # the step counter and the learning-rate drops (warm-up and decay go on)
    best = "best"  # the best dev score and the early-stopping count


class Stop(Choice):
    """Why training ended (the run's last line; ``stopped by SIGTERM`` when a signal ended it)."""

    max_steps = "max_steps"
    max_minutes = "max_minutes"
    max_epochs = "max_epochs"
    early_stopping = "early stopping"
    signal = "signal"


class Metric(Choice):
    bleu = "bleu"
    loss = "loss"


class DecodeMethod(Choice):
    greedy = "greedy"
    beam = "beam"
    sample = "sample"


class Quantize(Choice):
    none = "none"
    int8 = "int8"


class Alignment(Choice):
    none = "none"
    hard = "hard"
    soft = "soft"


class PlotKind(Choice):
    attention = "attention"
    gates = "gates"
    curves = "curves"
    representations = "representations"
    gradients = "gradients"


AUTO = "auto"


def check_setting(value: object, name: str = "threads") -> str:
    """A ``threads`` setting as its canonical string: ``auto``, or a whole number (0: torch's default)."""
    text = str(value).strip().lower()
    if text == AUTO or (text.isdigit() and not isinstance(value, bool)):
        return text if text == AUTO else str(int(text))
    raise ConfigValueError(f"unknown {name}={value!r}: use auto or a number of threads (0: torch's default)")


def check_device(value: object, name: str = "device") -> str:
    """A ``device`` setting for inference as its canonical string: ``auto`` (a visible GPU, else the CPU), ``cpu``,
    ``cuda`` or ``cuda:N``."""
    text = str(value).strip().lower()
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ConfigValueError(f"unknown {name}={value!r}: use auto, cpu, cuda or cuda:N")


def checked(default: object, check: typing.Callable[[object, str], object], **kwargs: Any) -> Any:
    """A dataclass field whose value ``check(value, name)`` canonicalises or refuses when the config is built
    (:class:`Checked`): e.g. ``threads: str = checked("auto", check_setting)``."""
    return field(default=default, metadata={"check": check, **kwargs})


@dataclass(frozen=True)
class Range:
    """The values a numeric config key allows: ``lo`` and ``hi`` (``None``: no bound), each end included unless
    marked open. A float must also be finite: NaN fails no comparison, so without this it would slip through."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return "finite"

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        below = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return above and below

    def check(self, value: float | tuple[float, ...], name: str) -> None:
        """Refuse ``value`` (a number, or a tuple of numbers, each checked) in one line naming ``name``."""
        many = isinstance(value, (tuple, list))  # OmegaConf hands a tuple field over as a list
        for i, v in enumerate(value if many else [value]):  # type: ignore[arg-type]
            if not self.holds(v):
                bounds = f"finite and {self}" if not math.isfinite(v) and self != FINITE else str(self)
                raise ConfigValueError(f"{name}{f'[{i}]' if many else ''}={v!r} is out of range: must be {bounds}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POSITIVE = Range(0, lo_open=True)  # > 0
NON_NEGATIVE = Range(0)  # >= 0: where 0 means none, off or no limit
AT_LEAST_1 = Range(1)  # sizes and counts that cannot be empty
FRACTION = Range(0, 1, hi_open=True)  # [0, 1): a rate that must leave something (dropout, smoothing)
NONZERO_FRACTION = Range(0, 1, lo_open=True)  # (0, 1]: a share or factor that must keep something
SEED = Range(0, 2**32 - 1)  # what every random generator accepts (numpy's is the narrowest)
FINITE = Range()  # any number but NaN and inf


# The values each numeric key allows, by config class (nmt.config, nmt.serve.config) and field: Checked refuses
# others when the config is built. Every int and float field has one (tests/test_ranges.py walks them).
RANGES: dict[str, dict[str, Range]] = {
    "DataConfig": {"max_len": AT_LEAST_1, "vocab_size": AT_LEAST_1, "character_coverage": NONZERO_FRACTION,
                   "spm_input_sentence_size": AT_LEAST_1},
    "ModelConfig": {"emb_dim": AT_LEAST_1, "hidden_dim": AT_LEAST_1, "maxout_dim": AT_LEAST_1,
                    "maxout_pool": AT_LEAST_1, "attention_dim": AT_LEAST_1, "dropout": FRACTION, "init_std": POSITIVE},
    "TrainConfig": {
        "seed": SEED, "lr": POSITIVE, "adam_betas": FRACTION, "adadelta_rho": FRACTION, "adadelta_eps": POSITIVE,
        "weight_decay": NON_NEGATIVE, "warmup_steps": NON_NEGATIVE, "plateau_factor": NONZERO_FRACTION,
        "plateau_patience": NON_NEGATIVE, "min_lr": NON_NEGATIVE, "clip_norm": NON_NEGATIVE,
        "label_smoothing": FRACTION, "batch_tokens": AT_LEAST_1, "batch_sentences": NON_NEGATIVE,
        "max_steps": NON_NEGATIVE, "max_epochs": NON_NEGATIVE, "max_minutes": NON_NEGATIVE,
        "eval_every": AT_LEAST_1, "eval_max_sentences": NON_NEGATIVE, "eval_max_len_ratio": POSITIVE,
        "patience": NON_NEGATIVE, "log_every": AT_LEAST_1, "max_bad_updates": NON_NEGATIVE,
        "keep_last": NON_NEGATIVE, "average_last": NON_NEGATIVE, "accumulate": AT_LEAST_1,
    },
    "DecodeConfig": {"beam": AT_LEAST_1, "alpha": NON_NEGATIVE, "max_len_ratio": POSITIVE,
                     "max_len_extra": NON_NEGATIVE, "min_len": NON_NEGATIVE, "batch_tokens": AT_LEAST_1,
                     "n_best": AT_LEAST_1, "temperature": POSITIVE, "topk": NON_NEGATIVE, "topp": NONZERO_FRACTION,
                     "seed": SEED, "no_repeat_ngram": NON_NEGATIVE,
                     "coverage": NON_NEGATIVE},
    "TranslateConfig": {"max_input_len": AT_LEAST_1},
    "EvaluateConfig": {"bootstrap": NON_NEGATIVE, "max_input_len": AT_LEAST_1},
    "ScoreConfig": {"weight": FINITE, "batch_tokens": AT_LEAST_1},
    "AverageConfig": {"k": AT_LEAST_1},
    "PlotConfig": {"max_phrases": AT_LEAST_1, "labels": AT_LEAST_1, "units": AT_LEAST_1},
    "BenchConfig": {"ceiling_size": AT_LEAST_1, "warmup": NON_NEGATIVE, "measure": AT_LEAST_1, "beam": AT_LEAST_1,
                    "contention_warmup": NON_NEGATIVE, "contention_measure": AT_LEAST_1,
                    "dev_after_tokens": NON_NEGATIVE},
    "ServeConfig": {"port": Range(0, 65535), "workers": AT_LEAST_1, "batch_wait_ms": NON_NEGATIVE,
                    "max_chars": AT_LEAST_1, "max_sentences": AT_LEAST_1, "max_body_bytes": AT_LEAST_1,
                    "max_n_best": AT_LEAST_1, "max_input_len": AT_LEAST_1},
}


class Checked:
    """Checks a config when its dataclass is built, in code or by Hydra's ``OmegaConf.to_object``: a number
    outside its range (:data:`RANGES`) is refused first, so that a subclass's own checks, which run after
    ``super().__post_init__()``, see values in range; the string values of :class:`Choice` fields become members
    (an unknown value is one line naming the allowed ones); a field made with :func:`checked` goes through its
    own check."""

    section: ClassVar[str] = ""  # the config path of this dataclass, for error messages

    def __post_init__(self) -> None:
        for name, allowed in RANGES.get(type(self).__name__, {}).items():
            allowed.check(getattr(self, name), self._key(name))
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            kind, value = hints[f.name], getattr(self, f.name)
            name = self._key(f.name)
            if isinstance(kind, type) and issubclass(kind, Choice) and not isinstance(value, kind):
                setattr(self, f.name, kind.parse(value, name))
            elif typing.get_origin(kind) is list and issubclass(typing.get_args(kind)[0], Choice):
                setattr(self, f.name, [typing.get_args(kind)[0].parse(v, name) for v in value])
            elif "check" in f.metadata:
                setattr(self, f.name, f.metadata["check"](value, name))

    def _key(self, name: str) -> str:
        return f"{self.section}.{name}" if self.section else name


def to_plain(cfg: Any) -> dict:
    """A config dataclass as plain JSON values (choices as strings, tuples as lists), e.g. for checkpoints,
    which ``torch.load(weights_only=True)`` must read without unpickling classes."""
    return json.loads(json.dumps(asdict(cfg)))
