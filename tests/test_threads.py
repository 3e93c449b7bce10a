"""threads=auto (nmt.runtime.threads): the setting's parsing, and the tuner on a simulated machine whose speed per
thread count changes when a neighbour arrives and leaves (rates as measured on 2 cores: docs/benchmarks.md)."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.choices import ConfigValueError
from nmt.config import EvaluateConfig, TrainConfig
from nmt.runtime.threads import AdaptiveThreads, FixedThreads, candidates, check_setting, configure

ALONE = {1: 1200.0, 2: 2100.0}  # target tokens/s on a quiet 2-core machine
BUSY = {1: 1150.0, 2: 730.0}  # beside one busy single-thread process


class Machine:
    """A fake clock and thread setting: ``work`` takes units / rate(current count, neighbour) seconds (+-5%)."""

    def __init__(self) -> None:
        self.now, self.threads, self.busy = 0.0, 2, False
        self.noise = random.Random(0)

    def set_threads(self, n: int) -> None:
        self.threads = n

    def work(self, units: float, threads: int | None = None) -> float:
        rate = (BUSY if self.busy else ALONE)[threads or self.threads]
        self.calls = getattr(self, "calls", 0) + 1
        slow = 4.0 if self.calls <= 2 else 1.0  # the first updates of a process are slow (allocation, page faults)
        self.now += units / rate * slow * self.noise.uniform(0.95, 1.05)
        return units


def run_phase(machine: Machine, tuner: AdaptiveThreads | None, seconds: float, fixed: int | None = None) -> float:
    """Units done in ``seconds`` of simulated time, by ``tuner`` or at a fixed count."""
    end, done = machine.now + seconds, 0.0
    while machine.now < end:
        if tuner is None:
            done += machine.work(700, fixed)
        else:
            with tuner.timed(700):
                done += machine.work(700)
    return done


def test_settings() -> None:
    assert check_setting("auto") == "auto" and check_setting(" AUTO ") == "auto"
    assert check_setting(2) == "2" and check_setting("0") == "0"
    for bad in ("two", -1, "1.5", True):
        with pytest.raises(ConfigValueError, match="threads"):
            check_setting(bad)
    assert candidates(1) == [1] and candidates(2) == [1, 2] and candidates(12) == [1, 2, 4, 8, 12]


def test_configs_default_to_auto_and_check_the_value() -> None:
    assert TrainConfig().threads == "auto" and EvaluateConfig(checkpoint="x").threads == "auto"
    assert TrainConfig(threads=3).threads == "3"  # built in code with an int
    with pytest.raises(ConfigValueError, match="train.threads='many'"):
        TrainConfig(threads="many")


def test_fixed_setting_sets_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert configure(1).current == 1 == torch.get_num_threads()
        assert isinstance(configure("0"), FixedThreads) and torch.get_num_threads() == 1  # 0: left as it is
    finally:
        torch.set_num_threads(before)


def test_auto_follows_a_neighbour_and_keeps_its_speed() -> None:
    """Quiet, then a neighbour for 10 minutes, then quiet again: auto picks 2 threads, moves to 1 within seconds of
    the neighbour's arrival, returns to 2 after it leaves, and in each phase does at least 97% (quiet) or 90%
    (busy) of the work of the better fixed setting."""
    m = Machine()
    tuner = AdaptiveThreads(2, set_threads=m.set_threads, clock=lambda: m.now)
    quiet = run_phase(m, tuner, 600)
    assert tuner.current == 2
    m.busy = True
    start = m.now
    busy = run_phase(m, tuner, 600)
    moved = [t for t, n in tuner.history if n == 1 and t >= start - 1]
    assert tuner.current == 1 and moved
    m.busy = False
    back = run_phase(m, tuner, 600)
    assert tuner.current == 2

    ref = Machine()
    best_quiet = run_phase(ref, None, 600, fixed=2)
    ref.busy = True
    best_busy = run_phase(ref, None, 600, fixed=1)
    assert quiet >= 0.97 * best_quiet and back >= 0.95 * best_quiet  # back: includes finding out the neighbour left
    assert busy >= 0.90 * best_busy
    assert run_phase(ref, None, 600, fixed=2) < 0.7 * best_busy  # what the old default (all cores) did busy


def test_auto_on_one_core_never_changes_anything() -> None:
    calls: list[int] = []
    tuner = AdaptiveThreads(1, set_threads=calls.append, clock=iter(range(10_000)).__next__)
    for _ in range(200):
        with tuner.timed(10):
            pass
    assert calls == [1] and tuner.current == 1


def test_tick_measures_between_calls() -> None:
    clock = iter([0.0, 1.0, 3.0, 3.5]).__next__
    seen: list[tuple[float, float]] = []
    tuner = AdaptiveThreads(2, set_threads=lambda n: None, clock=clock)
    tuner.record = lambda units, secs: seen.append((units, secs))  # type: ignore[method-assign]
    tuner.restart()  # 0.0
    tuner.tick(10)  # 1.0: 10 units in 1 s
    tuner.tick(20)  # 3.0: 20 units in 2 s
    tuner.restart()  # 3.5: time spent elsewhere is not counted
    assert seen == [(10, 1.0), (20, 2.0)]


def test_slow_first_updates_do_not_decide_the_count() -> None:
    """The first updates of a process are slow whatever the count; the first round must not hold that against
    the count it starts with (it would keep a worse one until the first re-check)."""
    m = Machine()
    tuner = AdaptiveThreads(2, set_threads=m.set_threads, clock=lambda: m.now)
    run_phase(m, tuner, 15)
    assert tuner.current == 2 and [n for _, n in tuner.history] == [2, 1, 2]
