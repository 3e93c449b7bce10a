"""A training run and how it starts: :func:`setup` builds (or, with ``train.resume``, restores) everything the
loop in nmt.training.train needs, and :class:`Run` holds it, with the run directory's files: checkpoints (payloads in
nmt.checkpoint), ``metrics.jsonl`` and the resolved config.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from nmt import checkpoint
from nmt.choices import Precision, to_plain
from nmt.config import Config, TrainConfig
from nmt.data.batching import BatchIterator
from nmt.data.prepare import Corpus, prepare
from nmt.data.sampled_batches import training_batches
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.model.base import TranslationModel
from nmt.runtime import precision
from nmt.runtime.process import Runtime
from nmt.training import distributed, finetune
from nmt.training.board import Board
from nmt.training.optim import make_optimizer

log = logging.getLogger("nmt.train")


@dataclass
class TrainState:
    """Everything besides weights and optimizer that a resumed run needs to continue exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already done
    best: float | None = None
    best_step: int = 0
    bad_evals: int = 0  # validations since the last improvement (early stopping)
    plateau_bad: int = 0  # validations since the last improvement or lr drop
    lr_scale: float = 1.0  # product of plateau drops
    elapsed_s: float = 0.0  # training wall time so far (kept by the loop's clock)
    history: list = field(default_factory=list)  # [step, dev BLEU] of every validation
    bad_in_row: int = 0  # consecutive updates skipped for a non-finite loss or gradient
    skipped: int = 0  # updates skipped so far in all

    def validated_now(self) -> bool:
        """Whether the current step has been validated."""
        return bool(self.history) and self.history[-1][0] == self.step


@dataclass
class Run:
    """One training run in ``dir``: its model, optimizer, data, state and place in a torchrun job."""

    cfg: Config
    dist: distributed.Dist
    dir: Path
    corpus: Corpus
    model: TranslationModel
    opt: torch.optim.Optimizer
    batches: BatchIterator
    state: TrainState
    loss_fn: Callable[..., torch.Tensor]  # model.loss, through DDP under torchrun
    autocast: Any  # a context manager: bf16 autocast (train.precision=bf16), else nothing
    board: Board  # TensorBoard curves (rank 0, train.tensorboard)
    runtime: Runtime = field(default_factory=Runtime.untouched)  # threads told each update's time; signals
    origin: dict[str, Any] | None = None  # a fine-tuning run's parent (nmt.training.finetune.origin)
    parent_pieces: list[int] | None = None  # a fine-tuning run's: the target pieces its parent was trained on
    precision: Precision = Precision.fp32  # the one in use: train.precision with auto resolved

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def target_pieces(self) -> list[int]:
        """The target pieces the model was trained on: this run's, and a fine-tuning run's parent's."""
        if self.parent_pieces is None:
            return self.corpus.target_pieces
        return sorted(set(self.corpus.target_pieces) | set(self.parent_pieces))

    def save_weights(self, name: str) -> None:
        """``best.pt`` or ``step-<N>.pt``: weights, settings and tokenizer."""
        checkpoint.save(checkpoint.weights_payload(self.model, self.cfg, self.corpus.tokenizer, self.state.step,
                                                   self.target_pieces, self.origin), self.dir / name)

    def save_last(self) -> None:
        """``last.pt``, everything a resumed run needs (rank 0 only)."""
        if self.dist.is_main:
            checkpoint.save(checkpoint.training_payload(self.model, self.cfg, self.corpus.tokenizer, self.state,
                                                        self.opt, self.device, self.target_pieces, self.origin),
                            self.dir / "last.pt")

    def log_metrics(self, kind: str, values: dict) -> None:
        """One ``metrics.jsonl`` row (rank 0 only)."""
        if self.dist.is_main:
            row = {"kind": kind, "step": self.state.step, "epoch": self.state.epoch + 1, **values}
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")


def setup(cfg: Config, dist: distributed.Dist | None = None, runtime: Runtime | None = None) -> Run:
    """A new run in ``cfg.run_dir``, or the one there continued (``train.resume``), or a new one that fine-tunes
    ``train.init_from`` (nmt.training.finetune); refuses to overwrite a run unless ``train.overwrite``. Nothing is
    written until the run is accepted. ``runtime``: the process-wide settings to use (nmt.runtime.process); None
    installs ``train.threads``, the allocator settings and signal handlers, as the command line does."""
    dist = dist or distributed.Dist(device=distributed.resolve_device(cfg.train.device))
    precision_in_use = precision.resolve(cfg.train.precision, dist.device)  # auto: bf16 where it is native
    bf16 = precision_in_use == Precision.bf16
    run_dir = Path(cfg.run_dir)
    cfg, resumed, parent = _starting_point(cfg, run_dir)
    tc = cfg.train
    runtime = runtime or Runtime.install(tc.threads)
    runtime.prepare_training(dist.device, bf16)
    random.seed(tc.seed)
    torch.manual_seed(tc.seed)
    tok = resumed.tokenizer if resumed else parent.tokenizer if parent else None
    with dist.main_first():  # rank 0 fills the sentencepiece and datasets caches, the others reuse them
        corpus = prepare(cfg.data, tok)
    model = build_model(cfg.model, corpus.tokenizer.src_vocab_size, corpus.tokenizer.tgt_vocab_size).to(dist.device)
    opt = make_optimizer(model, tc)
    batches = training_batches(corpus, cfg.data, tc)  # data.spm_alpha > 0: pieces sampled anew each epoch
    state = (_restore(resumed, model, opt, dist, run_dir) if resumed else
             TrainState(**finetune.start(parent, model, opt, tc.init_keep)) if parent else TrainState())
    autocast = torch.autocast(dist.device.type, dtype=torch.bfloat16) if bf16 else None
    # the loss through DistributedDataParallel under torchrun (after loading, so every rank has the weights)
    run = Run(cfg, dist, run_dir, corpus, model, opt, batches, state, dist.wrap(model),
              autocast or contextlib.nullcontext(), Board(run_dir, False), runtime)
    run.origin, run.parent_pieces = _lineage(resumed, parent, tc)
    run.precision = precision_in_use
    if dist.is_main:
        _write_run_files(run, fresh=resumed is None)
        run.board = Board(run_dir, tc.tensorboard, state.step)
    return run


def _starting_point(cfg: Config, run_dir: Path) -> tuple[Config, checkpoint.Checkpoint | None,
                                                         checkpoint.Checkpoint | None]:
    """The run's config and what it starts from: the ``last.pt`` it resumes, or the parent it fine-tunes (the
    model and tokenizer settings then come from that checkpoint, nmt.training.finetune.inherit), or neither."""
    resumed = _resumable(cfg, run_dir)
    parent = None
    if resumed is not None and (cfg.train.init_from or resumed.config.train.init_from):
        if cfg.train.init_from:
            log.info("train.init_from=%s: %s holds this run's last.pt, so the run resumes from it (the checkpoint "
                     "it fine-tunes is not read again)", cfg.train.init_from, run_dir)
        cfg = finetune.inherit(cfg, resumed, resumed.config.train.init_from, resumed.config.train.init_keep)
    elif cfg.train.init_from:
        parent = finetune.load_parent(cfg)
        cfg = finetune.inherit(cfg, parent, str(parent.path.resolve()), cfg.train.init_keep)
    if resumed is not None:
        checkpoint.check_compatible(resumed.payload, cfg.model, cfg.data)
    return cfg, resumed, parent


def _lineage(resumed: checkpoint.Checkpoint | None, parent: checkpoint.Checkpoint | None,
             tc: TrainConfig) -> tuple[dict[str, Any] | None, list[int] | None]:
    """A fine-tuning run's record of its parent and the parent's target pieces (None, None for other runs)."""
    source = resumed or parent
    if source is None or not tc.init_from:
        return None, None
    pieces = None if source.target_pieces is None else source.target_pieces.tolist()
    return (resumed.payload.get("init_from") if resumed else finetune.origin(parent, tc.init_keep)), pieces


def _resumable(cfg: Config, run_dir: Path) -> checkpoint.Checkpoint | None:
    """The ``last.pt`` to continue, or None for a new run. With ``train.init_from``, ``train.resume=true`` without a
    ``last.pt`` starts the fine-tuning run, so that one command starts it and continues it."""
    last = run_dir / "last.pt"
    if last.exists() and not cfg.train.resume and not cfg.train.overwrite:
        raise NMTError(f"{run_dir} already holds a run: pass train.resume=true to continue it, "
                       "train.overwrite=true to start over, or another run_dir")
    if not cfg.train.resume or (not last.exists() and cfg.train.init_from):
        return None
    if not last.exists():
        raise NMTError(f"train.resume=true but {last} does not exist")
    return checkpoint.load(last)


def _restore(ckpt: checkpoint.Checkpoint, model: TranslationModel, opt: torch.optim.Optimizer,
             dist: distributed.Dist, run_dir: Path) -> TrainState:
    """Weights, optimizer, random generators and training state from ``last.pt``."""
    model.load_state_dict(ckpt.weights)
    opt.load_state_dict(ckpt.payload["optimizer"])
    checkpoint.restore_rng(ckpt.payload, dist.device)
    state = TrainState(**ckpt.payload["train_state"])
    if dist.is_main:
        forget_lost_updates(run_dir, state.step)
    log.info("resumed %s at step %d (epoch %d)", run_dir / "last.pt", state.step, state.epoch + 1)
    return state


def _write_run_files(run: Run, fresh: bool) -> None:
    """The run directory, the tokenizer and an empty metrics file (a new run), and the resolved config."""
    run.dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        run.corpus.tokenizer.save(run.dir)
        (run.dir / "metrics.jsonl").unlink(missing_ok=True)
    (run.dir / "config.json").write_text(json.dumps(to_plain(run.cfg), indent=2))
    (run.dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(run.cfg)))


def forget_lost_updates(run_dir: Path, step: int) -> None:
    """On resume: drop what a killed run wrote after its ``last.pt`` (at ``step``): metrics rows (and a half-written
    last row), ``step-<N>.pt`` files of later steps and the temporary file of an interrupted save."""
    later = [p for p in checkpoint.step_checkpoints(run_dir) if int(p.stem.split("-")[1]) > step]
    for stale in [*run_dir.glob(".*.pt.*.tmp"), *later]:
        stale.unlink(missing_ok=True)
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
