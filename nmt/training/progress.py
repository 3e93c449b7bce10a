"""What training shows while it runs: a progress bar on a terminal, or a log line every ``log_every`` updates
otherwise, and a ``kind: train`` row of ``metrics.jsonl`` as often. The loop owns the clock; this only shows it."""

from __future__ import annotations

import math
import sys
import time

from tqdm import tqdm

from nmt.training.run import Run


class Progress:
    """:param run: the run shown. :param total: the updates the run is expected to make."""

    def __init__(self, run: Run, total: int) -> None:
        self.run, self.total = run, total
        self.interactive = sys.stderr.isatty() and run.dist.is_main
        self.bar = tqdm(total=total, initial=run.state.step, unit="step", dynamic_ncols=True,
                        disable=not self.interactive)
        self.tokens, self.loss, self.norms, self.window_start = 0, 0.0, [], time.monotonic()

    def update(self, loss: float, n_tokens: int, grad_norm: float) -> None:
        """Count one update (its summed loss, target tokens and gradient norm before clipping); every
        ``log_every`` updates, report the window (metrics.jsonl, TensorBoard, the bar or a log line)."""
        s, tc = self.run.state, self.run.cfg.train
        self.tokens += n_tokens
        self.loss += loss
        self.norms.append(grad_norm)
        self.bar.update(1)
        if s.step % tc.log_every or not self.run.dist.is_main:
            return
        rate = self.tokens / max(time.monotonic() - self.window_start, 1e-9)
        avg = self.loss / max(self.tokens, 1)
        values = {"loss": avg, "ppl": math.exp(min(avg, 50)), "tgt_tok_s": rate,
                  "tgt_tok_update": self.tokens / len(self.norms),  # all micro-batches and ranks of an update
                  "lr": self.run.opt.param_groups[0]["lr"], "grad_norm": sum(self.norms) / len(self.norms),
                  "threads": self.run.runtime.threads.current}
        self.run.log_metrics("train", {**values, "elapsed_s": s.elapsed_s, "precision": self.run.precision.value})
        self.run.board.scalars("train", values, s.step)
        self.bar.set_postfix(loss=f"{avg:.3f}", tok_s=f"{rate:,.0f}", epoch=s.epoch + 1, threads=values["threads"],
                             precision=self.run.precision.value)
        if not self.interactive:
            eta = (self.total - s.step) * s.elapsed_s / max(s.step, 1)
            if tc.max_minutes > 0:
                eta = min(eta, tc.max_minutes * 60 - s.elapsed_s)
            print(f"step {s.step}/{self.total} | epoch {s.epoch + 1} | loss {avg:.3f} | {rate:,.0f} tgt tok/s | "
                  f"{values['tgt_tok_update']:,.0f} tgt tok/update | "
                  f"{values['threads']} threads | {self.run.precision.value} | "
                  f"{s.elapsed_s / 60:.1f} min | eta {eta / 60:.1f} min", flush=True)
        self.tokens, self.loss, self.norms, self.window_start = 0, 0.0, [], time.monotonic()

    def close(self) -> None:
        self.bar.close()
