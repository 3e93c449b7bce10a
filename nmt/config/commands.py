"""The typed configs of the commands that use a trained model (translate, evaluate, score, average, plot,
bench) and of decoding; ``nmt serve``'s is in nmt.serve.config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from nmt.choices import (
    Alignment,
    Checked,
    DecodeMethod,
    PlotKind,
    Quantize,
    Split,
    check_device,
    check_setting,
    checked,
)
from nmt.config.export import Backend
from nmt.config.runs import DataConfig, ModelConfig, TrainConfig
from nmt.errors import ConfigValueError


@dataclass
class DecodeConfig(Checked):
    """How translations are searched for."""

    section: ClassVar[str] = "decode"

    method: DecodeMethod = DecodeMethod.greedy  # greedy | beam | sample
    beam: int = 5  # beam size K (method=beam)
    alpha: float = 1.0  # length penalty exponent: score / ((5 + length) / 6) ** alpha (method=beam)
    max_len_ratio: float = 2.0  # output cap: ratio * source pieces + max_len_extra
    max_len_extra: int = 10
    min_len: int = 1  # no EOS before this many output pieces: a non-empty source never gets an empty translation
    batch_tokens: int = 4096  # source pieces per decoding batch (times the beam size for beam search)
    n_best: int = 1  # > 1: Moses n-best lines "id ||| hyp ||| logprob= L ||| score" (beam; sample: n samples)
    temperature: float = 1.0  # method=sample: the logits divided by this (< 1 sharper, > 1 flatter)
    topk: int = 0  # method=sample: draw from the k likeliest pieces only; 0: all
    topp: float = 1.0  # method=sample: from the smallest set of pieces holding this probability (nucleus)
    seed: int = 0  # method=sample: the same seed gives the same samples of a sentence, however it is batched
    coverage: float = 0.0  # beam search: beta of Wu et al. (2016)'s coverage penalty (attention models); 0: none
    no_repeat_ngram: int = 0  # greedy and beam: no n-gram of this size twice in an output (RNNs repeat); 0: any
    alignment: Alignment = Alignment.none  # none | hard (Moses i-j word pairs) | soft (word matrix): attention models

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_best > 1 and self.method == DecodeMethod.greedy:
            raise ConfigValueError("decode.n_best > 1 needs beam search (decode=beam5) or sampling (decode=sample)")
        if self.alignment != Alignment.none and self.n_best > 1:
            raise ConfigValueError("decode.alignment aligns the best translation: use it with decode.n_best=1")
        if self.method == DecodeMethod.beam and not 1 <= self.n_best <= self.beam:
            raise ConfigValueError(f"decode.n_best must be between 1 and decode.beam ({self.beam})")


@dataclass
class TranslateConfig(Checked):
    """``nmt translate``: a checkpoint, an input and an output."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    input: str = "-"  # a text file, one sentence per line; "-" reads stdin
    output: str = "-"  # where translations go, one line per input line; "-" writes stdout
    prefix: str | None = None  # a file of target prefixes, one per input line ("" none): each translation starts so
    constraints: str | None = None  # a file, a line per input line: target phrases it must hold, tab-separated
    glossary: str | None = None  # a TSV file "source term<TAB>target term": where a term occurs, its target must
    max_input_len: int = 250  # source pieces kept per line; longer lines are truncated with a warning
    tgt_lang: str | None = None  # a multilingual model's target language (data.pairs); null: its only one
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N
    quantize: Quantize = Quantize.none  # none | int8: dynamic int8 weights for the linear and GRU layers (CPU)
    backend: Backend = Backend.torch  # torch | onnxruntime: checkpoint= an `nmt export` directory (CPU, fp32)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass
class EvaluateConfig(Checked):
    """``nmt evaluate``: translate test sets and score them with sacrebleu."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    splits: list[Split] = field(default_factory=lambda: [Split.test])  # splits of the checkpoint's data config
    pair: str | None = None  # a multilingual model: evaluate this pair (SRC-TGT) only; null: each of its pairs
    src: str | None = None  # a source file to evaluate (with ref)
    ref: str | None = None  # its reference translations, line-aligned
    sacrebleu_set: str | None = None  # a sacrebleu test set name (e.g. wmt14), downloaded by sacrebleu
    bootstrap: int = 0  # resamples for a 95% BLEU confidence interval; 0: none
    baseline: str | None = None  # a baseline's hypotheses for the (one) test set: paired bootstrap test of BLEU
    lowercase: bool = False  # case-insensitive BLEU, comparable with published lowercased scores
    out_dir: str | None = None  # hypotheses and report.json; default: <run directory>/eval
    max_input_len: int = 250  # source pieces kept per line
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N
    quantize: Quantize = Quantize.none  # none | int8: dynamic int8 weights for the linear and GRU layers (CPU)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass
class ScoreConfig(Checked):
    """``nmt score``: log p(y|x) of given pairs, of a Moses n-best list's hypotheses, or of a Moses phrase table's
    phrase pairs."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    src: str | None = None  # source sentences, one a line
    tgt: str | None = None  # target sentences, line-aligned with src
    tsv: str | None = None  # instead of src/tgt: source<TAB>target lines
    nbest: str | None = None  # a Moses n-best list ("id ||| hypothesis ||| features ||| total") for sources in src
    phrase_table: str | None = None  # instead: a Moses phrase table (.gz too); p(tgt|src) columns go to output
    reverse: str | None = None  # phrase_table: a checkpoint trained tgt -> src, for one more column, p(src|tgt)
    phrase_eos: bool = True  # phrase_table: count the EOS after the target phrase (nmt.evaluation.phrase_table)
    feature: str = "nmt"  # feature name appended to the n-best list
    rerank: bool = False  # reorder each n-best list by total + weight * log p(y|x)
    weight: float = 1.0  # weight of the model score when reranking
    output: str = "-"  # "-": stdout
    batch_tokens: int = 4096  # pieces per scoring batch
    tgt_lang: str | None = None  # a multilingual model's target language (data.pairs); null: its only one
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.phrase_table and (self.src or self.tgt or self.tsv or self.nbest):
            raise ConfigValueError("phrase_table scores the table's own pairs: give it without src, tgt, tsv or nbest")
        if self.reverse and not self.phrase_table:
            raise ConfigValueError("reverse adds a p(src|tgt) column to a phrase table: give phrase_table too")


@dataclass
class AverageConfig(Checked):
    """``nmt average``: the mean of the parameters of a run's last ``k`` step checkpoints."""

    run: str = MISSING  # a run directory holding step-<N>.pt files
    k: int = 5  # how many of the latest step checkpoints to average
    output: str | None = None  # where the averaged checkpoint goes; default: <run>/averaged.pt


@dataclass
class PlotConfig(Checked):
    """``nmt plot KIND``: a picture of a trained run, written as PNG."""

    kind: PlotKind = MISSING  # attention | gates | curves | representations | gradients
    run: str = MISSING  # a run directory (curves: its metrics.jsonl) or a checkpoint; gradients: [a,b,...]
    sentence: str | None = None  # the source sentence (attention, gates)
    input: str | None = None  # source phrases, one a line (representations)
    max_phrases: int = 500  # phrases read from input (representations)
    labels: int = 40  # phrases written next to their dot (representations)
    units: int = 64  # units shown in the gate heatmaps (the most varying ones)
    output: str | None = None  # the PNG; default: <run directory>/plots/<kind>.png
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # how the attention plot's sentence is translated


@dataclass
class BenchConfig(Checked):
    """``nmt bench``: training and decoding speed, useful FLOP/s against the matmul ceiling, peak memory."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    threads: str = checked("2", check_setting)  # torch threads for every measurement (auto: nmt.runtime.threads)
    ceiling_size: int = 2048  # n of the n x n x n matmul that gives the large-size ceiling
    warmup: int = 20  # training updates before the measured window
    measure: int = 100  # training updates measured
    checkpoint: str | None = None  # a trained run or checkpoint to time decoding with; null: skip decoding
    quantized: bool = True  # also decode with int8 dynamic quantization (checkpoint given)
    beam: int = 5  # beam size of the beam-search row
    contention: bool = True  # also train alone and beside a busy process at 1 thread, all cores and auto
    contention_warmup: int = 10  # updates before each contention window (auto finds its count in them)
    contention_measure: int = 40  # updates measured in each of the six contention windows
    dev_after_tokens: int = 0  # also train a fresh model on this many target tokens and report its dev cross-entropy
    output: str = "runs/bench/bench.json"  # every figure, as JSON
