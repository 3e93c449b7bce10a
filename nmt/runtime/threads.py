"""``threads=auto``: the torch thread count that gives the most work per second now, re-checked as the machine changes.

torch's intra-op threads spin while they wait for each other. On a machine whose cores are all taken by nmt, a
neighbour that takes one core (a browser, an indexer, a second job) makes every parallel operation wait for the
thread that shares its core: on 2 cores, 2 threads beside one busy process keep a third of their speed, where 1
thread keeps almost all of it. No fixed setting is right on both a quiet and a busy machine, so ``auto`` measures.

How :class:`AdaptiveThreads` decides, from the work it is told about (``timed``/``tick``: units such as target
tokens, and the seconds they took):
- A *window* is at least ``window_s`` seconds and ``min_calls`` calls of work; its rate is units per second.
- A *probe round* measures one window at each candidate count (all of them at the start; later the neighbours of
  the current count) and keeps the fastest; the current count stays unless another is ``margin`` times faster.
- Between rounds it holds the count. A window slower than ``drop`` times the rate the count was chosen at (a
  neighbour arrived) starts a round at once; otherwise a round comes every ``recheck_s`` seconds of work (so a
  neighbour's leaving is noticed), and that interval doubles, up to ``max_recheck_s``, each time a round keeps the
  count, so that a quiet machine pays for few probes.
The first window is thrown away: the first updates of a run are slow for reasons of their own (memory is
allocated and paged in), and would make the count they ran at look bad. Candidates are 1, 2, 4, ... up to the
cores torch would use by default (under torchrun: OMP_NUM_THREADS).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import torch

from nmt.choices import AUTO, check_setting

DEFAULT_MAX = torch.get_num_threads()  # torch's own choice at import, before anything changed it


def candidates(max_threads: int) -> list[int]:
    """1, 2, 4, ... and ``max_threads`` itself."""
    out, n = [], 1
    while n < max_threads:
        out.append(n)
        n *= 2
    return [*out, max(max_threads, 1)]


class FixedThreads:
    """A fixed setting (``threads=N``, or 0 for torch's default): the same interface, measuring nothing."""

    def __init__(self, n: int) -> None:
        if n > 0:
            torch.set_num_threads(n)
        self.current = torch.get_num_threads()

    @contextlib.contextmanager
    def timed(self, units: float) -> Iterator[None]:
        yield

    def tick(self, units: float) -> None:
        pass

    def restart(self) -> None:
        pass


class AdaptiveThreads:
    """``threads=auto`` (see the module docstring). ``set_threads`` and ``clock`` are injectable for tests."""

    def __init__(self, max_threads: int = 0, *, window_s: float = 2.0, min_calls: int = 2, recheck_s: float = 30.0,
                 max_recheck_s: float = 60.0, drop: float = 0.75, margin: float = 1.05,
                 set_threads: Callable[[int], None] = torch.set_num_threads,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.candidates = candidates(max_threads or DEFAULT_MAX)
        self.window_s, self.min_calls, self.drop, self.margin = window_s, min_calls, drop, margin
        self.base_recheck_s, self.max_recheck_s = recheck_s, max_recheck_s
        self.recheck_s = recheck_s
        self._set, self._clock, self._lock = set_threads, clock, threading.Lock()
        self.history: deque[tuple[float, int]] = deque(maxlen=100)  # (seconds of work so far, count) at the latest
        # changes, for the curious
        self.work_s = 0.0  # seconds of measured work in all
        self._units = self._secs = 0.0
        self._calls = 0
        self._last_tick: float | None = None
        self._warming = True  # the first window is not measured: first updates are slow (allocation, page faults)
        self._todo = sorted(self.candidates, reverse=True)  # the first round tries every count, largest first
        self._round: dict[int, float] = {}  # rate of each count measured in the current round
        self._held: int | None = None  # the count held before the current round (None in the first)
        self._chosen_rate = 0.0
        self._since_round = 0.0
        self.current = 0
        self._use(self._todo.pop(0))

    def _use(self, n: int) -> None:
        if n != self.current:
            self.current = n
            self._set(n)
            self.history.append((self.work_s, n))

    @contextlib.contextmanager
    def timed(self, units: float) -> Iterator[None]:
        """Measure the block as ``units`` of work (e.g. the target tokens of one update)."""
        start = self._clock()
        yield
        self.record(units, self._clock() - start)

    def tick(self, units: float) -> None:
        """``units`` of work done since the previous tick (or :meth:`restart`): for callbacks after each batch."""
        now = self._clock()
        if self._last_tick is not None:
            self.record(units, now - self._last_tick)
        self._last_tick = now

    def restart(self) -> None:
        """Forget the time since the last tick (the caller did something else meanwhile)."""
        self._last_tick = self._clock()

    def record(self, units: float, seconds: float) -> None:
        """Account ``units`` of work that took ``seconds`` at the current count; may change the count."""
        with self._lock:
            self._units += units
            self._secs += seconds
            self._calls += 1
            self.work_s += seconds
            if self._secs >= self.window_s and self._calls >= self.min_calls:
                rate, secs = self._units / self._secs, self._secs
                self._units = self._secs = 0.0
                self._calls = 0
                self._window(rate, secs)

    def _window(self, rate: float, secs: float) -> None:
        if self._warming:
            self._warming = False
            return
        if self._round or self._todo:  # inside a probe round
            self._round[self.current] = rate
            if self._todo:
                self._use(self._todo.pop(0))
            else:
                self._end_round()
            return
        self._since_round += secs
        if rate < self.drop * self._chosen_rate or self._since_round >= self.recheck_s:
            self._start_round(rate, sudden=rate < self.drop * self._chosen_rate)

    def _start_round(self, rate: float, sudden: bool) -> None:
        """Probe the counts next to the current one; the current one's rate is the window just measured."""
        i = self.candidates.index(self.current)
        self._todo = [c for c in self.candidates[max(i - 1, 0): i + 2] if c != self.current]
        self._round, self._held = {self.current: rate}, self.current
        if sudden:
            self.recheck_s = self.base_recheck_s
        if not self._todo:
            self._end_round()
        else:
            self._use(self._todo.pop(0))

    def _end_round(self) -> None:
        held = self._held
        best = max(self._round, key=self._round.__getitem__)
        if held is not None and self._round[best] < self.margin * self._round[held]:
            best = held  # a change must pay for itself
        self.recheck_s = min(2 * self.recheck_s, self.max_recheck_s) if best == held else self.base_recheck_s
        self._chosen_rate = self._round[best]
        self._round, self._since_round = {}, 0.0
        self._use(best)


def configure(setting: str | int) -> FixedThreads | AdaptiveThreads:
    """Apply a ``threads`` setting to torch; the object to report work to (only ``auto`` uses the reports)."""
    setting = check_setting(setting)
    return AdaptiveThreads() if setting == AUTO else FixedThreads(int(setting))


Threads = FixedThreads | AdaptiveThreads  # what :func:`configure` returns
