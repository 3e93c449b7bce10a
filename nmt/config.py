"""Typed configuration: one dataclass per config group.

The YAML files in ``conf/`` fill these in; Hydra checks every key against them, so a misspelled key fails
when the config is composed. Library code receives these dataclasses (never a DictConfig), so tests can
build them directly. Each default lives here; the YAML files repeat them only to comment them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from nmt.choices import (
    Arch,
    Cell,
    CellType,
    Checked,
    DataFormat,
    DecodeMethod,
    Device,
    DistBackend,
    Init,
    Metric,
    Optimizer,
    PlotKind,
    Precision,
    Quantize,
    Schedule,
    Split,
    SpmModelType,
    check_device,
    check_setting,
    checked,
)
from nmt.errors import ConfigValueError


@dataclass
class SplitNames:
    """Names of the train/dev/test splits inside a corpus (file stems or hub split names)."""

    train: str = "train"
    dev: str = "dev"
    test: str = "test"


@dataclass
class DataConfig(Checked):
    """Where the parallel text comes from and how it becomes subword ids."""

    section: ClassVar[str] = "data"

    name: str = "bible-es-en"
    format: DataFormat = DataFormat.text  # text | tsv | jsonl | parquet | hub
    path: str | None = MISSING  # folder (text) or file pattern with {split} (tsv/jsonl/parquet)
    hub_name: str | None = None  # Hugging Face dataset id, for format=hub
    hub_config: str | None = None  # its configuration name (e.g. "fr-en" for wmt14)
    local_dir: str | None = None  # if set, read {local_dir}/{split}.{lang}[.gz] instead of the hub
    src_lang: str = MISSING  # required: a config file or override must give it
    tgt_lang: str = MISSING
    splits: SplitNames = field(default_factory=SplitNames)
    local_splits: SplitNames = field(default_factory=SplitNames)  # split file stems under local_dir
    max_len: int = 100  # drop training pairs longer than this many pieces on either side
    vocab_size: int = 8000  # sentencepiece pieces (per language if joint_vocab is false)
    spm_model_type: SpmModelType = SpmModelType.bpe  # bpe | unigram
    joint_vocab: bool = True  # one sentencepiece model for both languages
    character_coverage: float = 1.0
    spm_input_sentence_size: int = 2_000_000  # sentences sampled to train sentencepiece
    cache_dir: str = "~/.cache/nmt"  # sentencepiece models, keyed by their inputs

    # the settings the sentencepiece models of a checkpoint were made with: a resumed run must keep them
    VOCABULARY_KEYS: ClassVar[tuple[str, ...]] = ("src_lang", "tgt_lang", "vocab_size", "spm_model_type",
                                                  "joint_vocab")

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Rebuild from ``dataclasses.asdict`` output (as stored in checkpoints)."""
        return cls(**{**d, "splits": SplitNames(**d["splits"]), "local_splits": SplitNames(**d["local_splits"])})


@dataclass
class ModelConfig(Checked):
    """The RNN Encoder-Decoder of Cho et al. (2014), section 2.2 and appendix A, or RNNsearch
    (Bahdanau et al. 2015), which adds a bidirectional encoder and attention."""

    section: ClassVar[str] = "model"

    name: str = "small"
    arch: Arch = Arch.cho2014  # cho2014 (the summary vector c) | rnnsearch (bidirectional encoder + attention)
    emb_dim: int = 256  # word embedding rank (paper: 100)
    hidden_dim: int = 512  # GRU units in encoder and decoder (paper: 1000)
    maxout_dim: int = 256  # maxout units after pooling (paper: 500)
    maxout_pool: int = 2  # pieces pooled by each maxout unit
    attention_dim: int = 512  # alignment units of the additive attention (arch=rnnsearch; paper: 1000)
    dropout: float = 0.3  # on embeddings and the readout
    tie_embeddings: bool = False  # the output layer shares the target embedding matrix (needs maxout_dim = emb_dim)
    cell_type: CellType = CellType.gru  # gru | lstm | elman: the recurrent unit of every encoder and decoder
    cell: Cell = Cell.fused  # fused (torch.nn.GRU) | equations (nmt.model.gru, the gate equations)
    reset_after: bool = True  # reset gate after the recurrent matmul (cuDNN form); false: Cho 2014 form
    reverse_source: bool = True  # read the source right to left (Sutskever et al. 2014); Cho 2014 did not;
    # arch=rnnsearch reads it both ways and ignores this
    init: Init = Init.cho2014  # cho2014 (orthogonal recurrent, N(0, init_std) elsewhere) | torch
    init_std: float = 0.01

    # what a resumed run may change: the other settings fix the weights' shapes or what they compute
    RESUMABLE: ClassVar[frozenset[str]] = frozenset({"name", "dropout", "cell", "init", "init_std"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cell_type == CellType.lstm and self.cell == Cell.equations:
            raise ConfigValueError("model.cell=equations is written for cell_type=gru and elman; lstm is fused only")
        if self.cell == Cell.fused and not self.reset_after:
            raise ConfigValueError("model.reset_after=false (Cho 2014 form) needs model.cell=equations")
        if self.tie_embeddings and self.maxout_dim != self.emb_dim:
            raise ConfigValueError(f"model.tie_embeddings needs model.maxout_dim ({self.maxout_dim}) = model.emb_dim "
                                   f"({self.emb_dim})")


@dataclass
class TrainConfig(Checked):
    """Optimisation, validation and checkpointing."""

    section: ClassVar[str] = "train"

    seed: int = 1234
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: Device = Device.auto  # auto (a GPU when visible, else CPU) | cpu | cuda; under torchrun: cuda:LOCAL_RANK
    precision: Precision = Precision.fp32  # fp32 | bf16 (training forward autocast: GPU, CPU with AVX512-BF16/AMX)
    dist_backend: DistBackend = DistBackend.auto  # torchrun runs: auto (nccl on GPUs, gloo on CPUs) | nccl | gloo
    optimizer: Optimizer = Optimizer.adam  # adam | adadelta
    lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adadelta_rho: float = 0.95
    adadelta_eps: float = 1e-6
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.plateau  # constant | inverse_sqrt | plateau
    warmup_steps: int = 0
    plateau_factor: float = 0.5  # lr multiplier when the dev metric stops improving (schedule=plateau)
    plateau_patience: int = 2  # validations without improvement before the lr drops
    min_lr: float = 1e-5
    clip_norm: float = 1.0  # gradient norm clipping; 0 disables it
    label_smoothing: float = 0.0
    batch_tokens: int = 2048  # padded positions per batch (max of source and target side)
    batch_sentences: int = 0  # at most this many sentence pairs per batch; 0: no cap (batch_tokens alone)
    max_steps: int = 0  # 0: no limit
    max_epochs: int = 20
    max_minutes: float = 0.0  # wall-clock training budget; 0: no limit
    eval_every: int = 500  # validate every this many updates (and at the end of training)
    eval_max_sentences: int = 0  # validate BLEU on the first N dev sentences; 0: all
    eval_max_len_ratio: float = 2.0  # greedy output length cap: ratio * source length + 10
    early_stop_metric: Metric = Metric.bleu  # bleu | loss
    patience: int = 8  # validations without improvement before stopping; 0 disables early stopping
    log_every: int = 50  # progress-bar refresh and metrics-file line every this many updates
    max_bad_updates: int = 10  # stop after this many updates in a row skipped for a NaN/inf loss or gradient; 0: never
    tensorboard: bool = True  # TensorBoard curves in run_dir/tensorboard (tensorboard --logdir runs)
    keep_last: int = 5  # weights-only step-<N>.pt files kept from the latest validations (for nmt average); 0: none
    average_last: int = 0  # at the end: average the last k step-<N>.pt into averaged.pt and validate it; 0: no
    resume: bool = False  # continue from run_dir/last.pt
    overwrite: bool = False  # start over even if run_dir already holds a checkpoint

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.average_last > self.keep_last:
            raise ConfigValueError(f"train.average_last={self.average_last} needs train.keep_last >= it")


@dataclass
class Config:
    """The whole training configuration, as composed from conf/train.yaml."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "default"  # run name (conf/train.yaml puts runs in runs/<name>)
    run_dir: str = "runs/default"  # checkpoints, metrics, tokenizer models, resolved config


@dataclass
class DecodeConfig(Checked):
    """How translations are searched for."""

    section: ClassVar[str] = "decode"

    method: DecodeMethod = DecodeMethod.greedy  # greedy | beam
    beam: int = 5  # beam size K (method=beam)
    alpha: float = 1.0  # length penalty exponent: score / ((5 + length) / 6) ** alpha (method=beam)
    max_len_ratio: float = 2.0  # output cap: ratio * source pieces + max_len_extra
    max_len_extra: int = 10
    min_len: int = 1  # no EOS before this many output pieces: a non-empty source never gets an empty translation
    batch_tokens: int = 4096  # source pieces per decoding batch (times the beam size for beam search)
    n_best: int = 1  # nmt translate: > 1 writes Moses n-best lines "id ||| hyp ||| logprob= L ||| score" (beam)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_best > 1 and self.method != DecodeMethod.beam:
            raise ConfigValueError("decode.n_best > 1 needs beam search (decode=beam5)")
        if self.method == DecodeMethod.beam and not 1 <= self.n_best <= self.beam:
            raise ConfigValueError(f"decode.n_best must be between 1 and decode.beam ({self.beam})")


@dataclass
class TranslateConfig(Checked):
    """``nmt translate``: a checkpoint, an input and an output."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    input: str = "-"  # a text file, one sentence per line; "-" reads stdin
    output: str = "-"  # where translations go, one line per input line; "-" writes stdout
    max_input_len: int = 250  # source pieces kept per line; longer lines are truncated with a warning
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N
    quantize: Quantize = Quantize.none  # none | int8: dynamic int8 weights for the linear and GRU layers (CPU)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass
class EvaluateConfig(Checked):
    """``nmt evaluate``: translate test sets and score them with sacrebleu."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    splits: list[Split] = field(default_factory=lambda: [Split.test])  # splits of the checkpoint's data config
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
    """``nmt score``: log p(y|x) of given pairs, or of a Moses n-best list's hypotheses."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    src: str | None = None  # source sentences, one a line
    tgt: str | None = None  # target sentences, line-aligned with src
    tsv: str | None = None  # instead of src/tgt: source<TAB>target lines
    nbest: str | None = None  # a Moses n-best list ("id ||| hypothesis ||| features ||| total") for sources in src
    feature: str = "nmt"  # feature name appended to the n-best list
    rerank: bool = False  # reorder each n-best list by total + weight * log p(y|x)
    weight: float = 1.0  # weight of the model score when reranking
    output: str = "-"  # "-": stdout
    batch_tokens: int = 4096  # pieces per scoring batch
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N


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
