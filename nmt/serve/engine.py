"""The served models and their dynamic batching.

Requests that arrive within ``batch_wait_ms`` of the first waiting one are merged, up to a token budget, into
one call of nmt.decoding.search.decode_all (which sorts their sentences by length and searches them in batches); each
request then gets its own sentences back, in order. All model work runs on one worker thread, so the event loop
keeps accepting requests while a batch is searched.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmt.choices import Alignment, DecodeMethod
from nmt.config import DecodeConfig
from nmt.decoding import alignment
from nmt.decoding.search import Hypothesis, decode_all
from nmt.decoding.translate import Translator
from nmt.runtime.threads import FixedThreads, Threads


def clean(text: str) -> str:
    """A sentence as ``nmt translate`` would read it: control characters (but tabs) as spaces, lone surrogates as
    U+FFFD, no line breaks."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "".join(" " if unicodedata.category(c) == "Cc" and c != "\t" else c for c in text)


@dataclass
class _Job:
    ids: list[list[int]]
    dc: DecodeConfig
    done: asyncio.Future
    prefixes: list[list[int]] | None = None  # a forced start (target piece ids) per sentence


@dataclass
class Batcher:
    """Merges the jobs of one model that arrive within ``wait_s`` into one search (per decoding setting)."""

    translator: Translator
    executor: ThreadPoolExecutor
    wait_s: float
    workers: int = 1  # batches searched at the same time (each on its own thread of ``executor``)
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    batches: int = 0  # searches run so far (a test reads it)
    threads: Threads = field(default_factory=lambda: FixedThreads(0))  # told each search's time (threads=auto)

    async def submit(self, ids: list[list[int]], dc: DecodeConfig, prefixes: list[list[int]] | None = None
                     ) -> list[list[Hypothesis]]:
        """The hypotheses of each source id list, best first, once its batch has been searched."""
        job = _Job(ids, dc, asyncio.get_running_loop().create_future(), prefixes)
        await self.queue.put(job)
        return await job.done

    async def run(self) -> None:
        """Forever: take the first waiting job, gather others for at most ``wait_s`` or until the token budget of
        its decoding setting is full, search each setting's jobs together, hand out the results."""
        loop, free = asyncio.get_running_loop(), asyncio.Semaphore(self.workers)
        running: set[asyncio.Task] = set()
        while True:
            await free.acquire()  # a worker is free: gather its batch
            jobs = [await self.queue.get()]
            budget = jobs[0].dc.batch_tokens
            tokens, deadline = sum(map(len, jobs[0].ids)), time.monotonic() + self.wait_s
            while tokens < budget and (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
                tokens += sum(map(len, jobs[-1].ids))
            task = asyncio.create_task(self._search_all(loop, jobs, free))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _search_all(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], free: asyncio.Semaphore) -> None:
        try:
            for group in _by_setting(jobs):
                await self._search(loop, group)
        finally:
            free.release()

    def _decode(self, ids: list[list[int]], dc: DecodeConfig, prefixes: list[list[int]] | None
                ) -> list[list[Hypothesis]]:
        with self.threads.timed(sum(map(len, ids))):
            return decode_all(self.translator.model, ids, dc, prefixes=prefixes)

    async def _search(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        ids = [x for job in jobs for x in job.ids]
        prefixes = [p for job in jobs for p in (job.prefixes or [[]] * len(job.ids))]
        try:
            hyps = await loop.run_in_executor(self.executor, self._decode, ids, jobs[0].dc,
                                              prefixes if any(prefixes) else None)
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
    """Jobs grouped by decoding setting, in arrival order: only jobs searched the same way share a batch."""
    groups: dict[tuple, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(sorted(vars(job.dc).items())), []).append(job)
    return list(groups.values())


@dataclass
class ServedModel:
    """A loaded checkpoint, its name and language pair, and its batcher."""

    name: str
    path: str
    translator: Translator
    batcher: Batcher

    @property
    def src_lang(self) -> str:
        return self.translator.config.data.src_lang

    @property
    def tgt_lang(self) -> str:
        return self.translator.config.data.tgt_lang

    def describe(self) -> dict[str, Any]:
        archs = [str(m.cfg.arch) for m in self.translator.members]
        return {"name": self.name, "source": self.src_lang, "target": self.tgt_lang,
                "arch": archs[0] if len(archs) == 1 else archs, "checkpoint": self.path, "step": self.translator.step}

    async def translate(self, lines: list[str], dc: DecodeConfig, max_input_len: int,
                        prefixes: list[str] | None = None) -> list[list[Hypothesis]]:
        """Hypotheses for each line (none for an empty one), through the batcher; ``prefixes``: the text each
        translation must start with ("" none)."""
        ids = self.translator.encode([clean(x) for x in lines], max_input_len)
        starts = self.translator.encode_prefixes([clean(p) for p in prefixes], len(lines)) if prefixes else None
        return await self.batcher.submit(ids, dc, starts)

    async def alignments(self, lines: list[str], hyps: list[list[Hypothesis]], mode: Alignment,
                         max_input_len: int) -> list[str]:
        """Each line's best translation's word alignment, as ``nmt translate decode.alignment=MODE`` writes it."""
        ids = self.translator.encode([clean(x) for x in lines], max_input_len)
        best = [h[0].tokens if h else [] for h in hyps]
        matrices = await self.call(self.translator.word_alignments, ids, best)
        show = alignment.hard if mode == Alignment.hard else None
        return [alignment.moses(show(m)) if show else alignment.soft(m) for m in matrices]

    def texts(self, hyps: list[Hypothesis]) -> list[str]:
        return self.translator.tokenizer.decode_tgt([h.tokens for h in hyps])

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the model's worker thread (work that is not batched: analysis, scoring)."""
        return await asyncio.get_running_loop().run_in_executor(self.batcher.executor, fn, *args)


def load_models(paths: list[str], quantize: str, wait_s: float, executor: ThreadPoolExecutor, workers: int = 1,
                threads: Threads | None = None, device: str = "auto") -> list[ServedModel]:
    """Each checkpoint (or ensemble ``[a,b,...]``) as a served model, named after its (first) run directory or
    file, made unique."""
    models: list[ServedModel] = []
    for path in paths:
        translator = Translator.open(path, quantize, device)
        p = translator.paths[0] if path.startswith("[") else Path(path)
        name = p.name if p.is_dir() else f"{p.parent.name}-{p.stem}" if p.parent.name else p.stem
        while name in {m.name for m in models}:
            name += "+"
        batcher = Batcher(translator, executor, wait_s, workers, threads=threads or FixedThreads(0))
        models.append(ServedModel(name, path, translator, batcher))
    return models


def search_config(default: DecodeConfig, method: str | None, beam: int | None, n_best: int) -> DecodeConfig:
    """The server's decoding setting with a request's choices: beam search whenever n-best is asked for."""
    chosen = DecodeMethod(method) if method else default.method
    if n_best > 1:
        chosen = DecodeMethod.beam
    size = beam or (default.beam if default.method == DecodeMethod.beam else 5)
    return DecodeConfig(**{**vars(default), "method": chosen, "beam": max(size, n_best), "n_best": n_best})
