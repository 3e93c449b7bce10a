"""Dynamic batching: the requests for one model merged into searches of nmt.decoding.search.decode_all (which sorts
their sentences by length), each request then given its own sentences back, in order.

The longer a search takes, the fuller the next one. A request that finds a search worker free and nobody waiting
opens a batch and waits up to ``wait_s`` for others to join it (a lone request waits no longer than that). The
requests that arrive while every worker searches queue up, and when a worker is free they all go into its next
search at once, with no window of their own: they have waited already. A batch holds at most one search batch of
its decoding setting: ``batch_tokens`` source pieces, divided by the rows each sentence takes (the beam, or the
samples); those that do not fit go first into the next one.

``linger_s`` (off by default) is for clients that each send their next request as soon as they have the answer
(``make bench-serve``'s). With one worker they split into two groups that take turns, each batch half of them:
the group just answered cannot join a search that starts as it is answered. So after a search the next batch
also waits up to ``linger_s`` for as many new requests as that search answered.

Search runs on the executor's threads, so the event loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nmt.choices import DecodeMethod
from nmt.config import DecodeConfig
from nmt.decoding.search import Hypothesis, decode_all
from nmt.decoding.terms import Term
from nmt.decoding.translate import Translator
from nmt.runtime.threads import FixedThreads, Threads


@dataclass
class _Job:
    ids: list[list[int]]
    dc: DecodeConfig
    done: asyncio.Future
    prefixes: list[list[int]] | None  # a forced start (target piece ids) per sentence
    arrived: float  # the event loop's clock when it was submitted
    terms: list[list[Term]] | None = None  # the phrases each sentence's translation must hold

    @property
    def cost(self) -> int:
        """Its share of a search batch's budget, counted as decode_all counts it: source pieces times the rows each
        sentence takes."""
        rows = {DecodeMethod.beam: self.dc.beam, DecodeMethod.sample: self.dc.n_best}.get(self.dc.method, 1)
        return sum(map(len, self.ids)) * rows


@dataclass
class Batcher:
    """Gathers the jobs of one model into searches, ``workers`` of them at a time (see the module's docstring)."""

    translator: Translator
    executor: ThreadPoolExecutor
    wait_s: float  # how long a job that finds a worker free and nobody waiting waits for others
    workers: int = 1  # batches searched at the same time (each on its own thread of ``executor``)
    linger_s: float = 0.0  # after a search, how long the next batch waits for as many new jobs as it answered
    threads: Threads = field(default_factory=lambda: FixedThreads(0))  # told each search's time (threads=auto)
    batches: int = 0  # searches run so far (a test reads it)
    waiting: deque[_Job] = field(default_factory=deque, init=False)  # submitted, not yet in a batch, oldest first
    _arrival: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)  # set on each submit
    # when the latest search ended (the event loop's clock), and how many jobs it answered
    _last: tuple[float, int] = field(default=(float("-inf"), 0), init=False, repr=False)

    async def submit(self, ids: list[list[int]], dc: DecodeConfig, prefixes: list[list[int]] | None = None,
                     terms: list[list[Term]] | None = None) -> list[list[Hypothesis]]:
        """The hypotheses of each source id list, best first, once its batch has been searched; ``terms``: the
        phrases each must hold (nmt.decoding.constrained)."""
        loop = asyncio.get_running_loop()
        job = _Job(ids, dc, loop.create_future(), prefixes, loop.time(), terms)
        self.waiting.append(job)
        self._arrival.set()
        return await job.done

    async def run(self) -> None:
        """Forever: when a worker is free, gather its batch and search it (as a task, so that the next batch
        gathers meanwhile)."""
        loop, free = asyncio.get_running_loop(), asyncio.Semaphore(self.workers)
        running: set[asyncio.Task] = set()
        while True:
            await free.acquire()
            jobs = await self._gather(loop)
            task = asyncio.create_task(self._search_all(loop, jobs, free))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        """The next batch: all that waited while the workers were busy, or the first job to come and those
        within ``wait_s`` of it; then, after a search, those that come within ``linger_s`` of its end, until as
        many have come as it answered. Never more than the budget, but always one job."""
        queued = any(not job.done.done() for job in self.waiting)
        while not (jobs := self._take([], 0)):
            self._arrival.clear()
            await self._arrival.wait()
        budget = jobs[0].dc.batch_tokens
        self._take(jobs, budget)
        if not queued:
            await self._fill(loop, jobs, budget, jobs[0].arrived + self.wait_s, lambda: False)
        ended, answered = self._last
        if self.linger_s:
            back = lambda: sum(job.arrived >= ended for job in jobs) >= answered  # noqa: E731
            await self._fill(loop, jobs, budget, ended + self.linger_s, back)
        return jobs

    def _take(self, jobs: list[_Job], budget: int) -> list[_Job]:
        """Move waiting jobs into ``jobs`` while they fit ``budget`` (the first one always does); skip those whose
        client has gone (their future cancelled)."""
        spent = sum(job.cost for job in jobs)
        while self.waiting and (not jobs or spent + self.waiting[0].cost <= budget or self.waiting[0].done.done()):
            job = self.waiting.popleft()
            if not job.done.done():
                jobs.append(job)
                spent += job.cost
        return jobs

    async def _fill(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], budget: int, deadline: float,
                    enough: Callable[[], bool]) -> None:
        """Take jobs as they come until the budget is full, ``enough()``, or the loop's clock reaches ``deadline``."""
        while (not self.waiting and sum(job.cost for job in jobs) < budget and not enough()
               and (left := deadline - loop.time()) > 0):
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), left)
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                return
            self._take(jobs, budget)

    async def _search_all(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], free: asyncio.Semaphore) -> None:
        try:
            for group in _by_setting(jobs):
                await self._search(loop, group)
        finally:
            self._last = (loop.time(), len(jobs))
            free.release()

    def _decode(self, ids: list[list[int]], dc: DecodeConfig, prefixes: list[list[int]] | None,
                terms: list[list[Term]] | None = None) -> list[list[Hypothesis]]:
        with self.threads.timed(sum(map(len, ids))):
            return decode_all(self.translator.model, ids, dc, prefixes=prefixes, terms=terms,
                              glue=self.translator.glue if terms else ())

    async def _search(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        ids = [x for job in jobs for x in job.ids]
        prefixes = [p for job in jobs for p in (job.prefixes or [[]] * len(job.ids))]
        terms = [ts for job in jobs for ts in (job.terms or [[]] * len(job.ids))]
        try:
            hyps = await loop.run_in_executor(self.executor, self._decode, ids, jobs[0].dc,
                                              prefixes if any(prefixes) else None, terms if any(terms) else None)
        except Exception as err:  # a failure answers its requests with an error; the server goes on
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(err)
            return
        self.batches += 1
        start = 0
        for job in jobs:
            if not job.done.done():  # a client that went away cancelled its future
                job.done.set_result(hyps[start : start + len(job.ids)])
            start += len(job.ids)


def _by_setting(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs grouped by decoding setting, in arrival order: only jobs searched the same way share a batch (those
    with terms apart, since constrained search takes no prefixes)."""
    groups: dict[tuple, list[_Job]] = {}
    for job in jobs:
        held = bool(job.terms and any(job.terms))
        groups.setdefault((held, *sorted(vars(job.dc).items())), []).append(job)
    return list(groups.values())
