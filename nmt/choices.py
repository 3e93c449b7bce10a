"""The string options of the typed configs, as enums: a value outside the set fails when the config is composed
(Hydra names the allowed values), and code compares members, never free strings."""

from __future__ import annotations

from enum import Enum

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
