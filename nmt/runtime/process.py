"""What nmt may change in the whole process, in one place: torch's thread count (``threads=auto|N|0``,
nmt.runtime.threads), glibc's reuse of freed memory and oneDNN's shape caches (training on a CPU,
nmt.runtime.allocator), and the SIGINT/SIGTERM handlers that let training stop cleanly (nmt.runtime.signals).

The command line installs a :class:`Runtime` for each command (:meth:`Runtime.install`); the Python API
(nmt.api) uses :meth:`Runtime.untouched` unless its caller passes one, so a notebook's process stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nmt.runtime.allocator import keep_freed_memory, no_shape_caches
from nmt.runtime.threads import FixedThreads, Threads
from nmt.runtime.threads import configure as configure_threads


@dataclass
class Runtime:
    """The process-wide settings a command runs with."""

    threads: Threads = field(default_factory=lambda: FixedThreads(0))  # told each unit of work's time (auto)
    tune_memory: bool = False  # training on a CPU: keep freed memory, and no oneDNN shape caches under bf16
    signals: bool = False  # SIGINT/SIGTERM stop training after the current update (nmt.runtime.signals)

    @classmethod
    def install(cls, threads: str | int = "auto", *, tune_memory: bool = True, signals: bool = True) -> Runtime:
        """Apply a ``threads`` setting to torch now, and allow the rest: what the command line runs with."""
        return cls(configure_threads(threads), tune_memory, signals)

    @classmethod
    def untouched(cls) -> Runtime:
        """Change nothing: torch's threads as they are, the allocator and signal handlers too."""
        return cls()

    def prepare_training(self, device: torch.device, bf16: bool) -> None:
        """Before the first update: the allocator settings for training on ``device`` (when allowed)."""
        if not self.tune_memory or device.type != "cpu":
            return
        if bf16:
            no_shape_caches()  # read by oneDNN when it first runs: before the first bf16 product
        keep_freed_memory()  # no page faults on the same large tensors in every update (nmt.runtime.allocator)
