"""Keep freed memory in the process instead of handing it back to the kernel after every training update; and
keep oneDNN from holding buffers for every matrix shape under bf16 autocast on the CPU.

glibc serves allocations above its mmap threshold (at most 32 MiB by default) with fresh ``mmap`` pages and unmaps
them on ``free``. A training update allocates and frees the same large tensors every time (the 8,000-way logits of
about 2,000 positions are 65 MB, and their gradient as many), so each update pays page faults and zero-filling for
them again (in ``fill_``, ``copy_`` and ``log_softmax``, which touch the fresh pages first). Raising the threshold and
switching trimming off lets the heap reuse the pages: on the 2-core benchmark machine training got 4.5% faster
(docs/benchmarks.md). Peak memory is the same, but it stays reserved until the process ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("nmt.allocator")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
THRESHOLDS = (1 << 30, 32 << 20)  # the first value this glibc accepts (old versions cap it at 32 MiB)


def keep_freed_memory() -> bool:
    """Tell glibc to reuse freed large blocks; returns whether it took effect (False on other C libraries)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    if not any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in THRESHOLDS):
        return False
    ok = mallopt(M_TRIM_THRESHOLD, -1) == 1  # -1: never give the top of the heap back
    log.debug("allocator: freed memory kept for reuse (%s)", "ok" if ok else "trim threshold refused")
    return ok


ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def no_onednn_primitive_cache() -> bool:
    """Switch off oneDNN's primitive cache, which bf16 autocast on the CPU fills: it keeps one set of buffers per
    matrix shape, and a run's batches have many shapes (on the spec batch its peak memory grew to 3.5-4.5 GB where
    fp32 stays at 1.9 GB; without the cache 2.2-2.3 GB at the same speed; docs/benchmarks.md). oneDNN reads the
    setting when it first runs, so this must come before the first bf16 product; a value the user set is kept.
    Returns whether the setting is now 0."""
    os.environ.setdefault(ONEDNN_CACHE, "0")
    return os.environ[ONEDNN_CACHE] == "0"
