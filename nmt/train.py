"""The training loop: ``train(cfg)`` with plain dataclasses; Hydra stays in nmt.cli."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from nmt import checkpoint, distributed
from nmt.allocator import keep_freed_memory
from nmt.config import Config, DataConfig, DecodeConfig, ModelConfig, TrainConfig
from nmt.data.batching import BatchIterator
from nmt.data.prepare import Corpus, prepare
from nmt.data.tokenizer import Tokenizer
from nmt.errors import NMTError
from nmt.metrics import bleu
from nmt.model import build_model
from nmt.model.seq2seq import EncoderDecoder, n_params
from nmt.signals import StopRequest
from nmt.translate import translate_ids

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
    elapsed_s: float = 0.0  # training wall time before this process
    history: list = field(default_factory=list)
    bad_in_row: int = 0  # consecutive updates skipped for a non-finite loss or gradient
    skipped: int = 0  # updates skipped so far in all


def learning_rate(step: int, cfg: TrainConfig, lr_scale: float) -> float:
    """Learning rate at update ``step`` (1-based): linear warm-up, then the schedule, times plateau drops."""
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    decay = 1.0
    if cfg.schedule == "inverse_sqrt":
        decay = math.sqrt(max(cfg.warmup_steps, 1) / max(step, cfg.warmup_steps, 1))
    elif cfg.schedule not in ("constant", "plateau"):
        raise NMTError(f"unknown train.schedule {cfg.schedule!r}: use constant, inverse_sqrt or plateau")
    return max(cfg.lr * warm * decay * lr_scale, cfg.min_lr if cfg.schedule == "plateau" else 0.0)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas),
                                weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=cfg.lr, rho=cfg.adadelta_rho, eps=cfg.adadelta_eps,
                                    weight_decay=cfg.weight_decay)
    raise NMTError(f"unknown train.optimizer {cfg.optimizer!r}: use adam or adadelta")


@torch.no_grad()
def dev_cross_entropy(model: EncoderDecoder, corpus: Corpus, batch_tokens: int) -> tuple[float, int]:
    """Teacher-forced loss summed over the dev split (nats) and the number of target tokens it covers."""
    device = next(model.parameters()).device
    dev = BatchIterator(corpus.dev_src, corpus.dev_tgt, batch_tokens, shuffle=False, seed=0)
    total, tokens = 0.0, 0
    for idx in dev.epoch(0):
        b = dev.make(idx).to(device)
        total += float(model.loss(b))
        tokens += b.n_tgt_tokens
    return total, tokens


@torch.no_grad()
def validate(model: EncoderDecoder, corpus: Corpus, cfg: TrainConfig) -> dict[str, float]:
    """Dev loss and perplexity (teacher forcing) and BLEU of greedy translations (sacrebleu, detokenized)."""
    model.eval()
    total, tokens = dev_cross_entropy(model, corpus, cfg.batch_tokens)
    n = cfg.eval_max_sentences or len(corpus.dev_src)
    greedy_cfg = DecodeConfig(method="greedy", max_len_ratio=cfg.eval_max_len_ratio, batch_tokens=cfg.batch_tokens)
    texts = corpus.tokenizer.decode_tgt(translate_ids(model, corpus.dev_src[:n], greedy_cfg))
    model.train()
    loss = total / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu(texts, corpus.dev_refs[:n]).score,
            "example": texts[0] if texts else ""}


def _improved(value: float, best: float | None, metric: str) -> bool:
    return best is None or (value > best if metric == "bleu" else value < best)


class Run:
    """One training run in ``cfg.run_dir``: model, optimizer, data and state, with checkpointing.

    :param dist: this process's rank and device under torchrun (see nmt.distributed); default: one process.
    """

    def __init__(self, cfg: Config, dist: distributed.Dist | None = None) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.dist = dist or distributed.Dist(device=distributed.resolve_device(cfg.train.device))
        self.device = self.dist.device
        if self.tc.precision not in ("fp32", "bf16"):
            raise NMTError(f"unknown train.precision {self.tc.precision!r}: use fp32 or bf16")
        if self.tc.precision == "bf16" and self.device.type != "cuda":
            raise NMTError("train.precision=bf16 needs a CUDA device (train.device=cuda or auto with a GPU)")
        self.dir = Path(cfg.run_dir)
        last = self.dir / "last.pt"
        resumed = None
        if last.exists() and not self.tc.resume and not self.tc.overwrite:
            raise NMTError(f"{self.dir} already holds a run: pass train.resume=true to continue it, "
                           "train.overwrite=true to start over, or another run_dir")
        if self.tc.resume:
            if not last.exists():
                raise NMTError(f"train.resume=true but {last} does not exist")
            resumed = checkpoint.load(last)
            check_compatible(resumed, cfg.model, cfg.data)
        if self.tc.threads > 0:
            torch.set_num_threads(self.tc.threads)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on the same large tensors in every update (nmt.allocator)
        random.seed(self.tc.seed)
        torch.manual_seed(self.tc.seed)
        tok = Tokenizer(resumed["tokenizer"]["src"], resumed["tokenizer"]["tgt"]) if resumed else None
        with self.dist.main_first():  # rank 0 fills the sentencepiece and datasets caches, the others reuse them
            self.corpus = prepare(cfg.data, tok)
        self.model = build_model(cfg.model, self.corpus.tokenizer.src_vocab_size,
                                 self.corpus.tokenizer.tgt_vocab_size).to(self.device)
        self.opt = make_optimizer(self.model, self.tc)
        self.state = TrainState()
        self.batches = BatchIterator.from_dataset(self.corpus.train, self.tc.batch_tokens, shuffle=True,
                                                  seed=self.tc.seed, max_sentences=self.tc.batch_sentences)
        if self.dist.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
        if resumed:
            self.model.load_state_dict(resumed["model"])
            self.opt.load_state_dict(resumed["optimizer"])
            self.state = TrainState(**resumed["train_state"])
            torch.set_rng_state(resumed["rng"]["torch"])
            random.setstate(resumed["rng"]["python"])
            if "cuda" in resumed["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(resumed["rng"]["cuda"], self.device)
            if self.dist.is_main:
                self.forget_lost_updates()
            log.info("resumed %s at step %d (epoch %d)", last, self.state.step, self.state.epoch + 1)
        elif self.dist.is_main:
            self.corpus.tokenizer.save(self.dir)
            (self.dir / "metrics.jsonl").unlink(missing_ok=True)
        # the loss through DistributedDataParallel under torchrun (after loading, so every rank has the weights)
        self.loss_fn = self.dist.wrap(self.model)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.tc.precision == "bf16"
                         else contextlib.nullcontext())
        # written only once the run is accepted, so a refused run leaves the directory as it was
        if self.dist.is_main:
            (self.dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
            (self.dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))

    # -- checkpoints -------------------------------------------------------------------------------
    def _payload(self, full: bool) -> dict:
        out = {
            "model": self.model.state_dict(),
            "model_info": self.model.describe(),
            "config": asdict(self.cfg),
            "tokenizer": {"src": self.corpus.tokenizer.src_model, "tgt": self.corpus.tokenizer.tgt_model},
            "step": self.state.step,
        }
        if full:
            out["train_state"] = asdict(self.state)
            out["optimizer"] = self.opt.state_dict()
            out["rng"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
            if self.device.type == "cuda":
                out["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return out

    def save_last(self) -> None:
        if self.dist.is_main:
            checkpoint.save(self._payload(full=True), self.dir / "last.pt")

    def forget_lost_updates(self) -> None:
        """On resume: drop what a killed run wrote after its ``last.pt``: metrics rows (and a half-written last
        row), ``step-<N>.pt`` files of later steps and the temporary file of an interrupted save."""
        later = [p for p in checkpoint.step_checkpoints(self.dir) if int(p.stem.split("-")[1]) > self.state.step]
        for stale in [*self.dir.glob(".*.pt.*.tmp"), *later]:
            stale.unlink(missing_ok=True)
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.state.step:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        tmp.replace(path)

    def log_metrics(self, kind: str, values: dict) -> None:
        if not self.dist.is_main:
            return
        row = {"kind": kind, "step": self.state.step, "epoch": self.state.epoch + 1, **values}
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def keep_step_checkpoint(self) -> None:
        """Write weights-only ``step-<N>.pt`` and delete all but the ``keep_last`` newest (best.pt is separate)."""
        if self.tc.keep_last <= 0:
            return
        checkpoint.save(self._payload(full=False), self.dir / f"step-{self.state.step}.pt")
        for old in checkpoint.step_checkpoints(self.dir)[: -self.tc.keep_last]:
            old.unlink(missing_ok=True)

    # -- the loop ------------------------------------------------------------------------------------
    def evaluate(self) -> bool:
        """Validate, keep the best checkpoint, update plateau/early-stopping state; True means stop."""
        s, tc = self.state, self.tc
        m = validate(self.model, self.corpus, tc)
        value = m["bleu"] if tc.early_stop_metric == "bleu" else m["loss"]
        if _improved(value, s.best, tc.early_stop_metric):
            s.best, s.best_step, s.bad_evals, s.plateau_bad = value, s.step, 0, 0
            checkpoint.save(self._payload(full=False), self.dir / "best.pt")
        else:
            s.bad_evals += 1
            s.plateau_bad += 1
            if tc.schedule == "plateau" and s.plateau_bad >= tc.plateau_patience:
                s.lr_scale *= tc.plateau_factor
                s.plateau_bad = 0
        self.keep_step_checkpoint()
        lr = learning_rate(max(s.step, 1), tc, s.lr_scale)
        self.log_metrics("dev", {"loss": m["loss"], "ppl": m["ppl"], "bleu": m["bleu"], "lr": lr})
        s.history.append([s.step, round(m["bleu"], 2)])
        tqdm.write(f"step {s.step:>6} | dev loss {m['loss']:.3f} | ppl {m['ppl']:.2f} | BLEU {m['bleu']:.2f} "
                   f"| best {s.best:.2f} @ {s.best_step} | lr {lr:.2e} | e.g. {m['example'][:60]!r}", file=sys.stdout)
        self.save_last()
        return tc.patience > 0 and s.bad_evals >= tc.patience

    def evaluate_all(self) -> bool:
        """:meth:`evaluate` on rank 0 while the other ranks wait; then every rank takes rank 0's training
        state (best score, plateau lr drops, patience) and its stop decision. One process: :meth:`evaluate`."""
        if not self.dist.enabled:
            return self.evaluate()
        stop = self.evaluate() if self.dist.is_main else False
        stop, state = self.dist.from_main((stop, asdict(self.state)))
        vars(self.state).update(state)
        return stop

    def fit(self) -> TrainState:
        """Train until a limit, early stopping or a stop signal; returns the final state."""
        s, tc = self.state, self.tc
        per_epoch = len(self.batches.epoch(s.epoch)) // self.dist.world_size
        total = tc.max_steps if tc.max_steps > 0 else tc.max_epochs * per_epoch
        log.info("model: %s parameters; %d training pairs (of %d) in %d batches/epoch; run dir %s",
                 f"{n_params(self.model):,}", len(self.corpus.train), self.corpus.n_train_raw, per_epoch, self.dir)
        self.progress = Progress(self, total)
        reason = "max_steps" if tc.max_steps > 0 and s.step >= tc.max_steps else None  # a finished run: no update
        self.model.train()
        with StopRequest() as stop_request:
            if reason is None and s.step > 0 and s.step % tc.eval_every == 0 and not self.validated_now():
                # resumed after a signal stopped the run just before a validation: do it now, as an
                # uninterrupted run did (it moves the schedule and early stopping)
                reason = "early stopping" if self.evaluate_all() else None
            while reason is None and s.epoch < tc.max_epochs:
                reason = self.run_epoch(stop_request)
            if reason is None:
                reason = "max_epochs"
            if stop_request.signal_name:
                self.save_last()
            elif not self.validated_now():
                self.evaluate_all()
        self.progress.close()
        if stop_request.signal_name and self.dist.is_main:
            print(f"stopped by {stop_request.signal_name} at step {s.step}; saved {self.dir / 'last.pt'}. Resume "
                  f"with the same command plus: hydra.run.dir={self.dir} train.resume=true", flush=True)
        elif self.dist.is_main:
            print(f"done ({reason}) after {s.step} updates, {s.epoch + (s.batch_in_epoch > 0)} epochs, "
                  f"{s.elapsed_s / 60:.1f} min: best dev {tc.early_stop_metric} {s.best:.2f} at step {s.best_step}; "
                  f"checkpoints in {self.dir}", flush=True)
        return s

    def validated_now(self) -> bool:
        """Whether the current step has been validated."""
        return bool(self.state.history) and self.state.history[-1][0] == self.state.step

    def run_epoch(self, stop_request: StopRequest) -> str | None:
        """Train on the rest of the current epoch; returns why training must stop, or None at the epoch's end."""
        s, tc = self.state, self.tc
        batches = self.batches.epoch(s.epoch)
        # with N ranks an update uses N batches, rank r taking batch_in_epoch + r; an epoch's last
        # len(batches) % N batches are left out, as DistributedSampler(drop_last=True) does (nmt.distributed)
        while s.batch_in_epoch + self.dist.world_size <= len(batches):
            batch = self.batches.make(batches[s.batch_in_epoch + self.dist.rank]).to(self.device)
            loss, n_tokens = self.update(batch)
            s.batch_in_epoch += self.dist.world_size
            self.progress.update(loss or 0.0, n_tokens if loss is not None else 0)
            out_of_time = tc.max_minutes > 0 and s.elapsed_s >= tc.max_minutes * 60
            if self.dist.enabled:  # rank 0's clock and signals decide for every rank: all stop at the same update
                out_of_time, stop_request.signal_name = self.dist.from_main((out_of_time, stop_request.signal_name))
            reason = None
            if tc.max_steps > 0 and s.step >= tc.max_steps:
                reason = "max_steps"
            elif out_of_time:
                reason = "max_minutes"
            if stop_request.signal_name:
                return f"stopped by {stop_request.signal_name}"
            if (s.step % tc.eval_every == 0 or reason) and self.evaluate_all():
                reason = "early stopping"
            if reason:
                return reason
        s.epoch += 1
        s.batch_in_epoch = 0
        return None

    def update(self, batch) -> tuple[float | None, int]:
        """One optimizer step on a batch (on every rank: the union of the ranks' batches); returns the summed
        loss (None when the update was skipped) and the number of target tokens of the step.

        A non-finite loss or gradient norm skips the update (the weights and optimizer stay as they were; the
        batch still counts as a step); ``train.max_bad_updates`` of them in a row stop training. Under torchrun
        the loss and the gradient norm are the same on every rank (summed and all-reduced), so all ranks skip
        together; they still run ``backward``, which DDP needs after every forward.
        """
        s, tc = self.state, self.tc
        s.step += 1
        for g in self.opt.param_groups:
            g["lr"] = learning_rate(s.step, tc, s.lr_scale)
        with self.autocast:
            loss = self.loss_fn(batch, tc.label_smoothing)
        total_loss, n_tokens = self.dist.sum_loss_tokens(loss, batch.n_tgt_tokens)
        self.opt.zero_grad(set_to_none=True)
        if not math.isfinite(total_loss) and not self.dist.enabled:
            return self.skip_update(f"loss {total_loss}"), n_tokens
        (loss / self.dist.loss_denominator(n_tokens)).backward()
        # max_norm=inf measures the norm without scaling anything
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_norm if tc.clip_norm > 0 else math.inf)
        if not (math.isfinite(total_loss) and torch.isfinite(norm)):
            self.opt.zero_grad(set_to_none=True)
            what = f"loss {total_loss}" if not math.isfinite(total_loss) else f"gradient norm {norm.item()}"
            return self.skip_update(what), n_tokens
        self.opt.step()
        s.bad_in_row = 0
        return total_loss, n_tokens

    def skip_update(self, what: str) -> None:
        """Count a skipped update; stop training (NMTError) after ``max_bad_updates`` in a row."""
        s, tc = self.state, self.tc
        s.bad_in_row += 1
        s.skipped += 1
        log.warning("step %d: %s, update skipped (%d in a row, %d in all)", s.step, what, s.bad_in_row, s.skipped)
        if 0 < tc.max_bad_updates <= s.bad_in_row:
            raise NMTError(f"{s.bad_in_row} non-finite losses or gradients in a row (last at step {s.step}, {what}): "
                           f"training stopped; {self.dir / 'last.pt'} holds the last good state (try a lower "
                           "train.lr or train.clip_norm, and resume with train.resume=true)")
        return None


class Progress:
    """The progress bar on a terminal, or a log line every ``log_every`` updates otherwise; metrics.jsonl rows."""

    def __init__(self, run: Run, total: int) -> None:
        self.run, self.total = run, total
        self.start = time.monotonic() - run.state.elapsed_s
        self.interactive = sys.stderr.isatty() and run.dist.is_main
        self.bar = tqdm(total=total, initial=run.state.step, unit="step", dynamic_ncols=True,
                        disable=not self.interactive)
        self.tokens, self.loss, self.window_start = 0, 0.0, time.monotonic()

    def update(self, loss: float, n_tokens: int) -> None:
        s, tc = self.run.state, self.run.tc
        self.tokens += n_tokens
        self.loss += loss
        self.bar.update(1)
        s.elapsed_s = time.monotonic() - self.start
        if s.step % tc.log_every or not self.run.dist.is_main:
            return
        rate = self.tokens / max(time.monotonic() - self.window_start, 1e-9)
        avg = self.loss / max(self.tokens, 1)
        self.run.log_metrics("train", {"loss": avg, "ppl": math.exp(min(avg, 50)), "tgt_tok_s": rate,
                                       "lr": self.run.opt.param_groups[0]["lr"], "elapsed_s": s.elapsed_s})
        self.bar.set_postfix(loss=f"{avg:.3f}", tok_s=f"{rate:,.0f}", epoch=s.epoch + 1)
        if not self.interactive:
            eta = (self.total - s.step) * s.elapsed_s / max(s.step, 1)
            if tc.max_minutes > 0:
                eta = min(eta, tc.max_minutes * 60 - s.elapsed_s)
            print(f"step {s.step}/{self.total} | epoch {s.epoch + 1} | loss {avg:.3f} | {rate:,.0f} tgt tok/s | "
                  f"{s.elapsed_s / 60:.1f} min | eta {eta / 60:.1f} min", flush=True)
        self.tokens, self.loss, self.window_start = 0, 0.0, time.monotonic()

    def close(self) -> None:
        self.bar.close()


def check_compatible(ckpt: dict, model_cfg: ModelConfig, data_cfg: DataConfig | None = None) -> None:
    """Refuse to continue a checkpoint whose model settings or vocabulary settings differ from the requested ones."""
    saved = ckpt["model_info"]["config"]
    shape_keys = ("arch", "emb_dim", "hidden_dim", "attention_dim", "maxout_dim", "maxout_pool", "reset_after",
                  "reverse_source")
    default = ModelConfig()  # keys missing from older checkpoints had their default value
    saved = {k: saved.get(k, getattr(default, k)) for k in shape_keys}
    diffs = [f"{k}: checkpoint {saved[k]!r} vs requested {getattr(model_cfg, k)!r}" for k in shape_keys
             if saved[k] != getattr(model_cfg, k)]
    saved_data = ckpt.get("config", {}).get("data")
    if data_cfg is not None and saved_data:  # the checkpoint's sentencepiece models were made with these
        vocab_keys = ("src_lang", "tgt_lang", "vocab_size", "spm_model_type", "joint_vocab")
        diffs += [f"data.{k}: checkpoint {saved_data[k]!r} vs requested {getattr(data_cfg, k)!r}"
                  for k in vocab_keys if k in saved_data and saved_data[k] != getattr(data_cfg, k)]
    if diffs:
        raise NMTError("checkpoint does not match the requested run (" + "; ".join(diffs) + ")")


def train(cfg: Config) -> TrainState:
    """Train (or resume) a model as configured; returns the final training state.

    Under torchrun, each process joins the process group here and trains its share (nmt.distributed).
    """
    with distributed.session(cfg.train.device, cfg.train.dist_backend) as dist:
        return Run(cfg, dist).fit()
