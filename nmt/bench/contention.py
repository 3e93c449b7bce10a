"""``nmt bench``'s contention rows: training throughput alone and beside a busy neighbour, at fixed thread counts and
with ``threads=auto`` (nmt.runtime.threads).

The neighbour is one process spinning a single core, as a browser tab, an indexer or a second job would. Every
measurement runs in its own process (nmt.bench.run.in_fresh_process) with the bench's data, model and training
settings, ``contention_warmup`` + ``contention_measure`` updates, and the neighbour started before that process and
stopped after it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace

from nmt.config import BenchConfig

SPIN = "while True: pass"  # one busy core, no memory traffic to speak of


@contextlib.contextmanager
def busy_neighbour(on: bool = True) -> Iterator[subprocess.Popen | None]:
    """A process keeping one core busy for the block, yielded (None, and no process, when ``on`` is False)."""
    if not on:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def settings(max_threads: int) -> list[str]:
    """The thread settings compared: 1, every core (torch's default), and auto."""
    return [*dict.fromkeys(["1", str(max_threads)]), "auto"]


def measure(bc: BenchConfig, in_fresh_process: Callable[..., dict]) -> dict:
    """``{"alone"|"busy": {setting: tgt_tok_s}}``, and for auto its share of the better fixed setting and the count
    it ended on; ``in_fresh_process`` is nmt.bench.run's (each window in a new process)."""
    cores = os.cpu_count() or 1
    small = replace(bc, warmup=bc.contention_warmup, measure=bc.contention_measure)
    out: dict = {"cores": cores, "updates": bc.contention_measure, "auto_threads": {}}
    for where in ("alone", "busy"):
        out[where] = {}
        for setting in settings(cores):
            print(f"contention: threads={setting}, {'beside a busy process' if where == 'busy' else 'alone'} ...",
                  flush=True)
            with busy_neighbour(where == "busy"):
                res = in_fresh_process("_train", replace(small, threads=setting), threads=setting)
            out[where][setting] = res["tgt_tok_s"]
            if setting == "auto":
                out["auto_threads"][where] = res["threads"]
        best = max(v for k, v in out[where].items() if k != "auto")
        out[f"auto_share_{where}"] = out[where]["auto"] / best
    return out


def rows(c: dict) -> list[tuple[str, str]]:
    """Table rows: one per condition, every setting's target tokens/s and auto's share of the better fixed one."""
    out = []
    for where, label in (("alone", "alone"), ("busy", "beside 1 busy process")):
        figures = ", ".join(f"{'auto' if k == 'auto' else f'{k} thr'} {v:,.0f}" for k, v in c[where].items())
        out.append((f"training tgt tok/s {label}", f"{figures} (auto: {c[f'auto_share_{where}']:.0%} of the better "
                                                   f"fixed setting, ended on {c['auto_threads'][where]} threads)"))
    return out
