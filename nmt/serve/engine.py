"""The served models: a loaded checkpoint, its language pair and its batcher (nmt.serve.batcher, which merges
requests into searches). All model work runs on the executor's threads, so the event loop keeps accepting
requests while a batch is searched.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.choices import Alignment
from nmt.config import DecodeConfig
from nmt.config.export import Backend
from nmt.config.pairs import parse_pairs
from nmt.decoding import alignment
from nmt.decoding.search import Hypothesis
from nmt.decoding.translate import Translator
from nmt.runtime.threads import FixedThreads, Threads
from nmt.serve.batcher import Batcher


def clean(text: str) -> str:
    """A sentence as ``nmt translate`` would read it: control characters (but tabs) as spaces, lone surrogates as
    U+FFFD, no line breaks."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "".join(" " if unicodedata.category(c) == "Cc" and c != "\t" else c for c in text)


@dataclass
class ServedModel:
    """A loaded checkpoint (or ``nmt export`` directory: ``backend``), its name and language pair, and its
    batcher."""

    name: str
    path: str
    translator: Translator
    batcher: Batcher
    backend: Backend = Backend.torch

    @property
    def src_lang(self) -> str:
        return self.translator.config.data.src_lang

    @property
    def tgt_lang(self) -> str:
        return self.translator.config.data.tgt_lang

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The (source, target) languages it translates: a multilingual model's ``data.pairs``, or its one pair."""
        data = self.translator.config.data
        return parse_pairs(data.pairs) if data.pairs else [(data.src_lang, data.tgt_lang)]

    def target(self, lang: str) -> str | None:
        """What to ask the translator for when ``lang`` is wanted: the language for a multilingual model (its
        tag), None for a single-pair one."""
        return lang if self.translator.config.data.pairs else None

    def describe(self) -> dict[str, Any]:
        archs = [str(m.cfg.arch) for m in self.translator.members] or [str(self.translator.config.model.arch)]
        return {"name": self.name, "source": self.src_lang, "target": self.tgt_lang,
                "pairs": [f"{s}-{t}" for s, t in self.pairs],
                "arch": archs[0] if len(archs) == 1 else archs, "attention": self.translator.model.attends,
                "checkpoint": self.path, "step": self.translator.step, "backend": self.backend.value}

    async def translate(self, lines: list[str], dc: DecodeConfig, max_input_len: int,
                        prefixes: list[str] | None = None, terms: list[list[str]] | None = None,
                        target: str | None = None) -> list[list[Hypothesis]]:
        """Hypotheses for each line (none for an empty one), through the batcher; ``prefixes``: the text each
        translation must start with ("" none); ``terms``: the phrases each must hold; ``target``: a multilingual
        model's target language (:meth:`target`)."""
        ids = self.translator.encode([clean(x) for x in lines], max_input_len, target=target)
        starts = self.translator.encode_prefixes([clean(p) for p in prefixes], len(lines)) if prefixes else None
        held = self.translator.encode_terms([[clean(t) for t in ts] for ts in terms], len(lines)) if terms else None
        return await self.batcher.submit(ids, dc, starts, held)

    async def alignments(self, lines: list[str], hyps: list[list[Hypothesis]], mode: Alignment,
                         max_input_len: int, target: str | None = None) -> list[str]:
        """Each line's best translation's word alignment, as ``nmt translate decode.alignment=MODE`` writes it."""
        ids = self.translator.encode([clean(x) for x in lines], max_input_len, target=target)
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
                threads: Threads | None = None, device: str = "auto", linger_s: float = 0.0,
                backend: Backend | str = Backend.torch) -> list[ServedModel]:
    """Each checkpoint (or ensemble ``[a,b,...]``; with ``backend="onnxruntime"``, each ``nmt export``
    directory) as a served model, named after its (first) run directory or file, made unique; ``wait_s``,
    ``workers`` and ``linger_s``: its batcher's (nmt.serve.batcher)."""
    backend = Backend.parse(backend, "backend")
    models: list[ServedModel] = []
    for path in paths:
        translator = Translator.open(path, quantize, device, backend)
        p = translator.paths[0] if path.startswith("[") else Path(path)
        name = p.name if p.is_dir() else f"{p.parent.name}-{p.stem}" if p.parent.name else p.stem
        while name in {m.name for m in models}:
            name += "+"
        batcher = Batcher(translator, executor, wait_s, workers, linger_s, threads=threads or FixedThreads(0))
        models.append(ServedModel(name, path, translator, batcher, backend))
    return models

