"""The batcher's gathering, with a scripted model whose search blocks until the test lets it go: requests that
queue while a search runs share the next one, at once and up to the budget; a lone request on an idle model waits
no window when there is none; ``linger_s`` holds a batch for the clients just answered. Nothing here depends on
how fast the machine is: each step waits for a state (a search started, requests queued), not for a time."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nmt.config import DecodeConfig
from nmt.decoding.search import Hypothesis
from nmt.decoding.terms import Term
from nmt.serve.batcher import Batcher

BUDGET = DecodeConfig(batch_tokens=6)  # source pieces per search batch
PATIENCE_S = 30.0  # the most any step may take before the test fails (it takes milliseconds)


@dataclass
class Scripted(Batcher):
    """A batcher whose search records its sources, waits for a permit from the test, and answers each source with
    its ids reversed."""

    seen: list[list[list[int]]] = field(default_factory=list)
    permits: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def _decode(self, ids: list[list[int]], dc: DecodeConfig, prefixes: list[list[int]] | None,
                terms: list[list[Term]] | None = None) -> list[list[Hypothesis]]:
        self.seen.append([list(x) for x in ids])
        assert self.permits.acquire(timeout=PATIENCE_S), "the test never let this search finish"
        return [[Hypothesis(list(reversed(x)))] for x in ids]


async def _until(condition, what: str) -> None:
    """Yield to the loop (and the search thread) until ``condition()``."""
    for _ in range(int(PATIENCE_S / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never: {what}")


def _scripted(wait_s: float, linger_s: float = 0.0) -> Scripted:
    return Scripted(None, ThreadPoolExecutor(1), wait_s, linger_s=linger_s)  # type: ignore[arg-type]


async def _run(batcher: Scripted, script) -> None:
    runner = asyncio.create_task(batcher.run())
    try:
        await asyncio.wait_for(script(batcher), PATIENCE_S)
    finally:
        runner.cancel()
        batcher.permits.release(100)
        batcher.executor.shutdown(wait=True)


def test_requests_that_queue_behind_a_search_share_the_next_one_at_once() -> None:
    """The window is an hour: a request that waited it out would fail the test. The first request fills the
    budget (6 pieces) and starts at once; three queue behind it; the two that fit go together, the third next."""

    async def script(b: Scripted) -> None:
        first = asyncio.ensure_future(b.submit([[1, 2, 3, 4, 5, 6]], BUDGET))
        await _until(lambda: len(b.seen) == 1, "the first search started")
        rest = [asyncio.ensure_future(b.submit(ids, BUDGET)) for ids in ([[7]], [[8, 9], [10]], [[11, 12, 13, 14]])]
        await _until(lambda: len(b.waiting) == 3, "three requests queued")
        b.permits.release()
        await _until(lambda: len(b.seen) == 2, "the second search started")
        assert b.seen[1] == [[7], [8, 9], [10]]  # 4 pieces; the next request's 4 would pass the budget of 6
        b.permits.release(2)
        results = await asyncio.gather(first, *rest)
        assert b.seen[2] == [[11, 12, 13, 14]] and b.batches == 3
        assert [[h[0].tokens for h in r] for r in results] == [[[6, 5, 4, 3, 2, 1]], [[7]], [[9, 8], [10]],
                                                                [[14, 13, 12, 11]]]

    asyncio.run(_run(_scripted(wait_s=3600.0), script))


def test_a_lone_request_on_an_idle_model_goes_at_once_without_a_window() -> None:
    async def script(b: Scripted) -> None:
        b.permits.release()
        assert [h[0].tokens for h in await b.submit([[1, 2]], BUDGET)] == [[2, 1]]
        assert b.seen == [[[1, 2]]]

    asyncio.run(_run(_scripted(wait_s=0.0), script))


def test_requests_that_come_together_to_an_idle_model_share_its_window() -> None:
    async def script(b: Scripted) -> None:
        jobs = [asyncio.ensure_future(b.submit(ids, BUDGET)) for ids in ([[1]], [[2, 3]], [[4, 5, 6]])]
        await _until(lambda: len(b.seen) == 1, "the search started")  # the budget filled: no need to wait
        b.permits.release()
        await asyncio.gather(*jobs)
        assert b.seen == [[[1], [2, 3], [4, 5, 6]]]

    asyncio.run(_run(_scripted(wait_s=3600.0), script))


def test_linger_holds_the_next_batch_for_the_clients_just_answered() -> None:
    """A search answers one request; one request queued meanwhile. With linger it waits for one new request (the
    answered client's next), and the two share a search; without, it goes at once, alone."""

    async def script(b: Scripted) -> None:
        first = asyncio.ensure_future(b.submit([[1, 2, 3, 4, 5, 6]], BUDGET))
        await _until(lambda: len(b.seen) == 1, "the first search started")
        queued = asyncio.ensure_future(b.submit([[7]], BUDGET))
        await _until(lambda: len(b.waiting) == 1, "a request queued")
        b.permits.release()
        await first
        if not b.linger_s:
            await _until(lambda: len(b.seen) == 2, "the queued request's search started")
        again = asyncio.ensure_future(b.submit([[8]], BUDGET))  # the client answered comes back
        b.permits.release(2)
        await asyncio.gather(queued, again)

    lingering, eager = _scripted(wait_s=0.0, linger_s=3600.0), _scripted(wait_s=0.0)
    asyncio.run(_run(lingering, script))
    asyncio.run(_run(eager, script))
    assert lingering.seen == [[[1, 2, 3, 4, 5, 6]], [[7], [8]]]
    assert eager.seen == [[[1, 2, 3, 4, 5, 6]], [[7]], [[8]]]


def test_a_client_that_went_away_is_not_searched() -> None:
    async def script(b: Scripted) -> None:
        first = asyncio.ensure_future(b.submit([[1, 2, 3, 4, 5, 6]], BUDGET))
        await _until(lambda: len(b.seen) == 1, "the first search started")
        gone, kept = asyncio.ensure_future(b.submit([[7]], BUDGET)), asyncio.ensure_future(b.submit([[8]], BUDGET))
        await _until(lambda: len(b.waiting) == 2, "two requests queued")
        gone.cancel()
        b.permits.release(2)
        await asyncio.gather(first, kept)
        assert b.seen[1] == [[8]]

    asyncio.run(_run(_scripted(wait_s=3600.0), script))
