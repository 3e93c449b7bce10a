"""The string options of the typed configs, as enums: a value outside the set fails when the config is composed
(Hydra names the allowed values), and code compares members, never free strings. :class:`Checked` gives the
same check to configs built in code; :func:`to_plain` turns a config back into plain values."""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, field, fields
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


class Metric(Choice):
    bleu = "bleu"
    loss = "loss"


class DecodeMethod(Choice):
    greedy = "greedy"
    beam = "beam"


class Quantize(Choice):
    none = "none"
    int8 = "int8"


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


class Checked:
    """Turns the string values of a config's :class:`Choice` fields into members when a dataclass is built in
    code (Hydra's composition has checked them already): an unknown value is one line naming the allowed ones.
    A field made with :func:`checked` goes through its own check."""

    section: ClassVar[str] = ""  # the config path of this dataclass, for error messages

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            kind, value = hints[f.name], getattr(self, f.name)
            name = f"{self.section}.{f.name}" if self.section else f.name
            if isinstance(kind, type) and issubclass(kind, Choice) and not isinstance(value, kind):
                setattr(self, f.name, kind.parse(value, name))
            elif typing.get_origin(kind) is list and issubclass(typing.get_args(kind)[0], Choice):
                setattr(self, f.name, [typing.get_args(kind)[0].parse(v, name) for v in value])
            elif "check" in f.metadata:
                setattr(self, f.name, f.metadata["check"](value, name))


def to_plain(cfg: Any) -> dict:
    """A config dataclass as plain JSON values (choices as strings, tuples as lists), e.g. for checkpoints,
    which ``torch.load(weights_only=True)`` must read without unpickling classes."""
    return json.loads(json.dumps(asdict(cfg)))
