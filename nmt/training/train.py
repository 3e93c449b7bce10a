"""The training loop, top to bottom: ``train(cfg)`` sets a run up (nmt.training.run), :func:`fit` trains it epoch by
epoch, one :func:`update` per batch, and validates every ``train.eval_every`` updates (:func:`validation_step`),
until a limit, early stopping or a stop signal. The loop owns the clock. Hydra stays in nmt.cli.main."""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import asdict
from typing import NamedTuple

import torch
from tqdm import tqdm

from nmt import checkpoint
from nmt.choices import Metric, Schedule, Stop
from nmt.config import Config
from nmt.data.batching import Batch
from nmt.errors import NMTError
from nmt.model.base import n_params
from nmt.runtime.process import Runtime
from nmt.runtime.signals import StopRequest
from nmt.training import distributed
from nmt.training.average import average_checkpoints
from nmt.training.optim import learning_rate
from nmt.training.progress import Progress
from nmt.training.run import Run, TrainState, setup
from nmt.training.validate import validate

log = logging.getLogger("nmt.train")


def train(cfg: Config, runtime: Runtime | None = None) -> TrainState:
    """Train (or resume) a model as configured; returns the final training state (``runtime``: see
    nmt.training.run.setup).

    Under torchrun, each process joins the process group here and trains its share (nmt.training.distributed).
    """
    with distributed.session(cfg.train.device, cfg.train.dist_backend) as dist:
        return fit(setup(cfg, dist, runtime))


def fit(run: Run) -> TrainState:
    """Train until a limit, early stopping or a stop signal (then ``last.pt`` is saved); returns the state."""
    s, tc = run.state, run.cfg.train
    n_batches = len(run.batches.epoch(s.epoch))
    per_epoch = n_batches // (run.dist.world_size * tc.accumulate)  # updates per epoch
    total = tc.max_steps if tc.max_steps > 0 else tc.max_epochs * per_epoch
    log.info("model: %s parameters; %d training pairs (of %d) in %d batches/epoch, %d updates/epoch of %d batches; "
             "run dir %s", f"{n_params(run.model):,}", len(run.corpus.train), run.corpus.n_train_raw, n_batches,
             per_epoch, run.dist.world_size * tc.accumulate, run.dir)
    progress = Progress(run, total)
    started = time.monotonic() - s.elapsed_s  # the clock: wall time of this and earlier processes
    reason = Stop.max_steps if tc.max_steps > 0 and s.step >= tc.max_steps else None  # a finished run: no update
    run.model.train()
    with StopRequest(enabled=run.runtime.signals) as stop:
        if reason is None and s.step > 0 and s.step % tc.eval_every == 0 and not s.validated_now():
            # resumed after a signal stopped the run just before a validation: do it now, as an uninterrupted
            # run did (it moves the schedule and early stopping)
            reason = Stop.early_stopping if validation_step(run) else None
        while reason is None and s.epoch < tc.max_epochs:
            reason = run_epoch(run, stop, progress, started)
        if stop.signal_name:
            run.save_last()
        elif not s.validated_now():
            validation_step(run)
    progress.close()
    if run.dist.is_main and tc.average_last > 0 and not stop.signal_name:
        _average_last(run)
    run.board.close()
    if run.dist.is_main:
        _report(run, reason or Stop.max_epochs, stop.signal_name)
    return s


def _average_last(run: Run) -> None:
    """``train.average_last``: the mean of the last k step checkpoints as ``averaged.pt``, validated like the others
    (its scores go to metrics.jsonl as ``kind: averaged``)."""
    paths = checkpoint.step_checkpoints(run.dir)[-run.cfg.train.average_last :]
    if len(paths) < 2:
        log.warning("train.average_last: %d step checkpoint(s), nothing to average", len(paths))
        return
    averaged = average_checkpoints(paths)
    checkpoint.save(averaged, run.dir / "averaged.pt")
    model = copy.deepcopy(run.model)
    model.load_state_dict(averaged["model"])
    dev = validate(model, run.corpus, run.cfg.train)
    run.log_metrics("averaged", {"loss": dev.loss, "ppl": dev.ppl, "bleu": dev.bleu, "of": [p.name for p in paths]})
    print(f"averaged {', '.join(p.name for p in paths)} into averaged.pt: dev BLEU {dev.bleu:.2f}, loss "
          f"{dev.loss:.3f} (best single checkpoint: {run.state.best:.2f} at step {run.state.best_step})", flush=True)


def run_epoch(run: Run, stop: StopRequest, progress: Progress, started: float) -> Stop | None:
    """Train on the rest of the current epoch; returns why training must stop, or None at the epoch's end.

    With N ranks and ``train.accumulate=K`` an update uses N K batches, rank r taking ``batch_in_epoch + k N + r``
    for k < K; an epoch's last ``len(batches) % (N K)`` batches are left out, as DistributedSampler(drop_last=True)
    does (nmt.training.distributed). Checkpoints fall between updates, so a resumed run starts at an update's first
    batch.
    """
    s, tc, dist = run.state, run.cfg.train, run.dist
    batches = run.batches.epoch(s.epoch)
    per_update = dist.world_size * tc.accumulate
    while s.batch_in_epoch + per_update <= len(batches):
        micro = [run.batches.make(batches[s.batch_in_epoch + k * dist.world_size + dist.rank]).to(run.device)
                 for k in range(tc.accumulate)]
        # train.threads=auto measures updates, not validations
        with run.runtime.threads.timed(sum(b.n_tgt_tokens for b in micro)):
            done = update(run, *micro)
        s.batch_in_epoch += per_update
        s.elapsed_s = time.monotonic() - started
        progress.update(done.loss or 0.0, n_tokens=done.n_tokens if done.loss is not None else 0,
                        grad_norm=done.grad_norm)
        reason = _limit_reached(run, stop)
        if stop.signal_name:
            return Stop.signal
        if (s.step % tc.eval_every == 0 or reason) and validation_step(run):
            reason = Stop.early_stopping
        if reason:
            return reason
    s.epoch += 1
    s.batch_in_epoch = 0
    return None


def _limit_reached(run: Run, stop: StopRequest) -> Stop | None:
    """``max_steps`` or ``max_minutes`` when reached. Under torchrun rank 0's clock and signals decide for every
    rank, so all stop at the same update."""
    s, tc = run.state, run.cfg.train
    out_of_time = tc.max_minutes > 0 and s.elapsed_s >= tc.max_minutes * 60
    if run.dist.enabled:
        out_of_time, stop.signal_name = run.dist.from_main((out_of_time, stop.signal_name))
    if tc.max_steps > 0 and s.step >= tc.max_steps:
        return Stop.max_steps
    return Stop.max_minutes if out_of_time else None


class Update(NamedTuple):
    """What one update did."""

    loss: float | None  # the summed loss; None when the update was skipped
    n_tokens: int  # target tokens of the update (all its micro-batches; on every rank: all ranks' tokens)
    grad_norm: float  # the gradient norm before clipping (nan when skipped for its loss)


def update(run: Run, *batches: Batch) -> Update:
    """One optimizer step on the union of ``batches`` (``train.accumulate`` micro-batches; on every rank: with the
    other ranks' micro-batches too). Each micro-batch's summed loss is divided by the tokens of the whole union
    before ``backward``, so the summed gradients are the union's gradient of its mean loss per token.

    A non-finite loss or gradient norm skips the update (the weights and optimizer stay as they were; the batches
    still count as a step). Under torchrun the loss and the gradient norm are the same on every rank (summed and
    all-reduced), so all ranks skip together; they still run ``backward``, which DDP needs after every forward.
    """
    s, tc, dist = run.state, run.cfg.train, run.dist
    s.step += 1
    for g in run.opt.param_groups:
        g["lr"] = learning_rate(s.step, tc, s.lr_scale)
    run.opt.zero_grad(set_to_none=True)
    n_tokens = dist.sum_over_ranks(sum(b.n_tgt_tokens for b in batches))
    n_tokens = n_tokens if isinstance(n_tokens, int) else int(round(n_tokens))
    total_loss = dist.sum_over_ranks(_forward_backward(run, batches, dist.loss_denominator(n_tokens)))
    if not math.isfinite(total_loss) and not dist.enabled:
        run.opt.zero_grad(set_to_none=True)
        return Update(_skip_update(run, f"loss {total_loss}"), n_tokens, math.nan)
    # max_norm=inf measures the norm without scaling anything
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.clip_norm if tc.clip_norm > 0 else math.inf)
    if not (math.isfinite(total_loss) and torch.isfinite(norm)):
        run.opt.zero_grad(set_to_none=True)
        what = f"loss {total_loss}" if not math.isfinite(total_loss) else f"gradient norm {norm.item()}"
        return Update(_skip_update(run, what), n_tokens, float(norm))
    run.opt.step()
    s.bad_in_row = 0
    return Update(total_loss, n_tokens, float(norm))


def _forward_backward(run: Run, batches: tuple[Batch, ...], denominator: float | int) -> torch.Tensor:
    """Forward and backward of each micro-batch, the gradients summing in ``.grad``; returns this rank's summed
    loss (0-dim, float64). Under DDP gradients are synced on the last micro-batch only. One process reads the loss
    once, before the last backward, and leaves that out when the loss is not finite (the update is skipped)."""
    total = torch.zeros((), dtype=torch.float64, device=run.device)
    for k, batch in enumerate(batches):
        last = k == len(batches) - 1
        with run.dist.no_sync(run.loss_fn, last):
            with run.autocast:
                loss = run.loss_fn(batch, run.cfg.train.label_smoothing)
            total += loss.detach()
            if last and not run.dist.enabled and not math.isfinite(total.item()):
                break
            (loss / denominator).backward()
    return total


def _skip_update(run: Run, what: str) -> None:
    """Count a skipped update; stop training (NMTError) after ``train.max_bad_updates`` in a row."""
    s, tc = run.state, run.cfg.train
    s.bad_in_row += 1
    s.skipped += 1
    log.warning("step %d: %s, update skipped (%d in a row, %d in all)", s.step, what, s.bad_in_row, s.skipped)
    if 0 < tc.max_bad_updates <= s.bad_in_row:
        raise NMTError(f"{s.bad_in_row} non-finite losses or gradients in a row (last at step {s.step}, {what}): "
                       f"training stopped; {run.dir / 'last.pt'} holds the last good state (try a lower "
                       "train.lr or train.clip_norm, and resume with train.resume=true)")


def validation_step(run: Run) -> bool:
    """Validate on rank 0 while the other ranks wait (:func:`_validate_and_keep_best`); then every rank takes rank
    0's training state (best score, plateau lr drops, patience) and its decision. True: stop early."""
    stop = _validate_and_keep_best(run) if run.dist.is_main else False
    if run.dist.enabled:
        stop, state = run.dist.from_main((stop, asdict(run.state)))
        vars(run.state).update(state)
    return stop


def _validate_and_keep_best(run: Run) -> bool:
    """Validate; keep ``best.pt``, a ``step-<N>.pt`` and ``last.pt``; move the plateau schedule and early stopping;
    log the scores. True: patience is exhausted."""
    s, tc = run.state, run.cfg.train
    dev = validate(run.model, run.corpus, tc)
    value = dev.bleu if tc.early_stop_metric == Metric.bleu else dev.loss
    if s.best is None or (value > s.best if tc.early_stop_metric == Metric.bleu else value < s.best):
        s.best, s.best_step, s.bad_evals, s.plateau_bad = value, s.step, 0, 0
        run.save_weights("best.pt")
    else:
        s.bad_evals += 1
        s.plateau_bad += 1
        if tc.schedule == Schedule.plateau and s.plateau_bad >= tc.plateau_patience:
            s.lr_scale *= tc.plateau_factor
            s.plateau_bad = 0
    if tc.keep_last > 0:  # weights-only step-<N>.pt of the latest validations, for nmt average
        run.save_weights(f"step-{s.step}.pt")
        for old in checkpoint.step_checkpoints(run.dir)[: -tc.keep_last]:
            old.unlink(missing_ok=True)
    lr = learning_rate(max(s.step, 1), tc, s.lr_scale)
    run.log_metrics("dev", {"loss": dev.loss, "ppl": dev.ppl, "bleu": dev.bleu, "lr": lr})
    run.board.scalars("dev", {"loss": dev.loss, "ppl": dev.ppl, "bleu": dev.bleu}, s.step)
    run.board.attention(run.model, run.corpus, tc, s.step)
    s.history.append([s.step, round(dev.bleu, 2)])
    tqdm.write(f"step {s.step:>6} | dev loss {dev.loss:.3f} | ppl {dev.ppl:.2f} | BLEU {dev.bleu:.2f} "
               f"| best {s.best:.2f} @ {s.best_step} | lr {lr:.2e} | e.g. {dev.example[:60]!r}", file=sys.stdout)
    run.save_last()
    return tc.patience > 0 and s.bad_evals >= tc.patience


def _report(run: Run, reason: Stop, signal_name: str | None) -> None:
    """The run's last line: how to resume after a signal, or why it stopped and where the checkpoints are."""
    s, tc = run.state, run.cfg.train
    if signal_name:
        print(f"stopped by {signal_name} at step {s.step}; saved {run.dir / 'last.pt'}. Resume with the same "
              f"command plus: hydra.run.dir={run.dir} train.resume=true", flush=True)
    else:
        print(f"done ({reason}) after {s.step} updates, {s.epoch + (s.batch_in_epoch > 0)} epochs, "
              f"{s.elapsed_s / 60:.1f} min: best dev {tc.early_stop_metric} {s.best:.2f} at step {s.best_step}; "
              f"checkpoints in {run.dir}", flush=True)
