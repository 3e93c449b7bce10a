"""Keep freed memory in the process instead of handing it back to the kernel after every training update; and
keep oneDNN and ideep from holding buffers for every matrix shape under bf16 autocast on the CPU.

glibc serves allocations above its mmap threshold (at most 32 MiB by default) with fresh ``mmap`` pages and unmaps
them on ``free``. A training update allocates and frees the same large tensors every time (the 8,000-way logits of
about 2,000 positions are 65 MB, and their gradient as many), so each update pays page faults and zero-filling for
them again (in ``fill_``, ``copy_`` and ``log_softmax``, which touch the fresh pages first). Raising the threshold and
switching trimming off lets the heap reuse the pages, which makes training faster (docs/benchmarks.md has the
measurements). Peak memory is the same, but it stays reserved until the process ends. (Giving the freed pages back
after every update, ``malloc_trim``, lowered bf16's peak but made training slower: not done.)
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
IDEEP_CACHE = "LRU_CACHE_CAPACITY"
NO_SHAPE_CACHES = {ONEDNN_CACHE: "0", IDEEP_CACHE: "1"}  # 1: the smallest the ideep cache takes


def no_shape_caches() -> bool:
    """Switch off the two caches that bf16 autocast on the CPU fills with buffers for every matrix shape, where a
    run's batches have many shapes: oneDNN's primitive cache and the computation cache of ideep, torch's layer over
    oneDNN (each held gigabytes of buffers over a run, at no gain in speed; docs/benchmarks.md). Both read the setting
    when they first run, so this must come before the first bf16 product; a value the user set is kept. Returns
    whether both are now off."""
    for name, value in NO_SHAPE_CACHES.items():
        os.environ.setdefault(name, value)
    return all(os.environ[name] == value for name, value in NO_SHAPE_CACHES.items())
