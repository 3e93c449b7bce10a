"""The typed configuration of a training run (``nmt train``): one dataclass per config group (data, model,
train) and :class:`Config`, which holds them.

The YAML files in ``conf/`` fill these in; Hydra checks every key against them, so a misspelled key fails
when the config is composed. Library code receives these dataclasses (never a DictConfig), so tests can
build them directly. Each default lives here; the YAML files repeat them only to comment them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from nmt.choices import (
    RANGES,
    Arch,
    Cell,
    CellType,
    Checked,
    Choice,
    DataFormat,
    Device,
    DistBackend,
    Init,
    InitKeep,
    Metric,
    Optimizer,
    Precision,
    Range,
    Schedule,
    SpmModelType,
    check_setting,
    checked,
)
from nmt.config.pairs import parse_pairs, side_language
from nmt.errors import ConfigValueError


class SpmSample(Choice):
    """Which side of the training pairs ``data.spm_alpha`` samples segmentations for."""

    src = "src"
    tgt = "tgt"
    both = "both"


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
    spm_alpha: float = 0.0  # subword regularisation: training pieces sampled anew each epoch (bpe: BPE-dropout
    # rate; unigram: the smoothing exponent of Kudo 2018); 0: off, every epoch the same pieces (dev and test always)
    spm_nbest: int = 64  # unigram with spm_alpha > 0: sample among this many best segmentations (Kudo's l)
    spm_sample: SpmSample = SpmSample.both  # src | tgt | both: the side(s) spm_alpha samples
    pairs: list[str] = field(default_factory=list)  # multilingual (nmt.config.pairs): SRC-TGT pairs trained as one
    # model, each source led by its target's tag <2tgt>; src_lang/tgt_lang become the sides' language or mul
    pair_temperature: float = 1.0  # pair sampling: pair i's share of an epoch is n_i^(1/T) normalised; 1: as the
    # corpora are (proportional), large (e.g. 1000): balanced, the same number of pairs from each

    # the settings the sentencepiece models of a checkpoint were made with: a resumed run must keep them
    VOCABULARY_KEYS: ClassVar[tuple[str, ...]] = ("src_lang", "tgt_lang", "vocab_size", "spm_model_type",
                                                  "joint_vocab", "pairs")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.pairs:
            if self.pair_temperature != 1.0:
                raise ConfigValueError("data.pair_temperature samples among data.pairs: give data.pairs too")
            return
        self.pairs = [str(p) for p in self.pairs]
        parsed = parse_pairs(self.pairs)
        self.src_lang = side_language(parsed, 0, self.src_lang, "data.src_lang")
        self.tgt_lang = side_language(parsed, 1, self.tgt_lang, "data.tgt_lang")
        if not self.joint_vocab:
            raise ConfigValueError("data.pairs needs data.joint_vocab=true: one sentencepiece model holds every "
                                   "language and the tags")
        if self.spm_alpha > 0:
            raise ConfigValueError("data.spm_alpha (subword sampling) is not supported with data.pairs yet: set "
                                   "data.spm_alpha=0")

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
    precision: Precision = Precision.fp32  # fp32 | bf16 (forward autocast) | auto: bf16 where native, else fp32
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
    accumulate: int = 1  # batches per update (gradient accumulation): one update equals one on their union
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
    init_from: str | None = None  # fine-tune: start from this checkpoint (a run directory: its best.pt), taking its
    # weights, tokenizer and model settings; a run_dir/last.pt to resume (train.resume=true) comes first
    init_keep: list[InitKeep] = field(default_factory=list)  # with init_from: also take optimizer | schedule | best
    # from it (needs a last.pt); the others start fresh

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.average_last > self.keep_last:
            raise ConfigValueError(f"train.average_last={self.average_last} needs train.keep_last >= it")
        if self.init_keep and not self.init_from:
            raise ConfigValueError("train.init_keep is for fine-tuning: it needs train.init_from=CHECKPOINT")


@dataclass
class Config:
    """The whole training configuration, as composed from conf/train.yaml."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "default"  # run name (conf/train.yaml puts runs in runs/<name>)
    run_dir: str = "runs/default"  # checkpoints, metrics, tokenizer models, resolved config


# the ranges of the subword-sampling keys, beside the other DataConfig ones in nmt.choices.RANGES
RANGES["DataConfig"].update(spm_alpha=Range(0, 1), spm_nbest=Range(2), pair_temperature=Range(0, lo_open=True))
