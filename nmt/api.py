"""nmt from Python: load trained models and translate, score and analyze with them; compose a training config
from overrides, as the command line takes them, and train it.

Nothing here changes process-wide state (torch's thread count, the allocator, signal handlers, environment
variables): the command line sets those up, and :func:`train` does so only when handed
``runtime=Runtime.install(...)`` (nmt.runtime.process). ``import nmt`` exposes these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from nmt.choices import Alignment
from nmt.config import Config, DecodeConfig
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.runtime.process import Runtime

__all__ = ["Aligned", "Model", "Runtime", "TrainResult", "Translation", "compose", "load", "train"]


@dataclass(frozen=True)
class Translation:
    """One hypothesis of an n-best list."""

    text: str
    logprob: float  # log p(text + EOS | source)
    score: float  # logprob over the length penalty, which ranks the list


@dataclass(frozen=True)
class Aligned:
    """A translation with its word alignment (nmt.decoding.alignment)."""

    text: str
    source_words: list[str]  # as the model read them (sentencepiece's normalisation)
    target_words: list[str]
    pairs: list[tuple[int, int]]  # (source word, target word) from 0: each target word to its heaviest source word
    weights: list[list[float]]  # (target words, source words) attention per word; each row sums to 1


class Model:
    """A trained model (or an ensemble) with its tokenizer: what :func:`load` returns."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    @property
    def source_lang(self) -> str:
        return self.translator.config.data.src_lang

    @property
    def target_lang(self) -> str:
        """The target language, ``mul`` for a one-to-many model (:attr:`pairs`)."""
        return self.translator.config.data.tgt_lang

    @property
    def pairs(self) -> list[str]:
        """The language pairs (``SRC-TGT``) the model translates: a multilingual model's, or its one pair."""
        data = self.translator.config.data
        return list(data.pairs) or [f"{data.src_lang}-{data.tgt_lang}"]

    @property
    def device(self) -> torch.device:
        return self.translator.device

    def translate(self, sentences: str | Sequence[str], *, prefix: str | Sequence[str] | None = None,
                  constraints: Sequence[Sequence[str]] | None = None, glossary: str | Path | dict[str, str] | None
                  = None, max_input_len: int = 250, target: str | None = None, **decode: Any
                  ) -> str | list[str] | list[Translation] | list[list[Translation]]:
        """Translations of one sentence or of a list, in order (empty sentences give empty translations).

        ``decode``: nmt.config.DecodeConfig's keys (``method="greedy"|"beam"``, ``beam``, ``alpha``, ``n_best``,
        ``min_len``, ``max_len_ratio``, ...); ``beam`` > 1 or ``n_best`` > 1 alone means beam search. With
        ``n_best`` > 1 each sentence gives its :class:`Translation` list, best first. ``prefix``: the text each
        translation must start with (one per sentence, "" for none), which the model continues. ``constraints``:
        per sentence, the target phrases its translation must hold; ``glossary``: a TSV file or a dict of source
        term -> target term, applied where a source term occurs (both by constrained beam search). ``target``: the
        target language of a multilingual model (one of :attr:`pairs`; None: its only one)."""
        from nmt.decoding.terms import Glossary, sentence_terms

        lines = [sentences] if isinstance(sentences, str) else list(sentences)
        starts = [prefix] if isinstance(prefix, str) else None if prefix is None else list(prefix)
        gloss = Glossary(glossary) if isinstance(glossary, dict) else None if glossary is None else Glossary.read(
            glossary)
        terms = sentence_terms(lines, constraints, gloss)
        dc = decode_config(**decode)
        if dc.n_best == 1:
            out: list[Any] = self.translator.translate(lines, dc, max_input_len=max_input_len, prefixes=starts,
                                                       terms=terms, target=target)
        else:
            from nmt.decoding.search import decode_all

            ids, t = self.translator.encode(lines, max_input_len, target=target), self.translator
            out = [[Translation(t, h.logprob, h.score) for t, h in zip(self._texts(hyps), hyps, strict=True)]
                   for hyps in decode_all(t.model, ids, dc, prefixes=t.encode_prefixes(starts, len(lines)),
                                          terms=t.encode_terms(terms, len(lines)), glue=t.glue)]
        return out[0] if isinstance(sentences, str) else out

    def align(self, sentences: Sequence[str], *, max_input_len: int = 250, target: str | None = None,
              **decode: Any) -> list[Aligned]:
        """Translations (``decode`` and ``target`` as in :meth:`translate`, one each) with their word alignments; a
        model without attention is refused (nmt.errors.NMTError)."""
        from nmt.decoding import alignment
        from nmt.decoding.search import decode_best

        t = self.translator
        t.check_alignment(Alignment.hard)
        dc = decode_config(**decode)
        ids = t.encode(list(sentences), max_input_len, target=target)
        hyps = decode_best(t.model, ids, dc)
        out = []
        for s, h, text, m in zip(ids, hyps, t.tokenizer.decode_tgt(hyps), t.word_alignments(ids, hyps), strict=True):
            src = alignment.words([t.tokenizer.src.id_to_piece(i) for i in s])
            tgt = alignment.words([t.tokenizer.tgt.id_to_piece(i) for i in h])
            out.append(Aligned(text if s else "", src, tgt, alignment.hard(m), m.tolist()))
        return out

    def _texts(self, hyps: list) -> list[str]:
        return self.translator.tokenizer.decode_tgt([h.tokens for h in hyps]) if hyps else []

    def score(self, sources: Sequence[str], targets: Sequence[str], batch_tokens: int = 4096,
              target: str | None = None) -> list[float]:
        """log p(target | source) of each pair, summed over the target's pieces and EOS (Cho et al. 2014);
        ``target``: a multilingual model's target language, as in :meth:`translate`."""
        from nmt.evaluation.score import score_pairs

        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        return [lp for lp, _ in score_pairs(self.translator, list(sources), list(targets), batch_tokens,
                                            target=target)]

    def analyze(self, sentence: str, *, max_input_len: int = 250, **decode: Any) -> dict[str, Any]:
        """One sentence translated (``decode`` as in :meth:`translate`) with what the model did: source and target
        pieces, the n-best list, the attention matrix (T+1, S) for attention models (else None) and the encoder's
        mean update and reset gates at each source piece (GRU models, else None), as plain values."""
        from nmt.serve.analysis import analyze

        if not self.translator.members:
            raise NMTError("analyze reads the model's gates and attention: it needs backend=torch and the checkpoint")
        return analyze(self.translator, sentence, decode_config(**decode), max_input_len)


def decode_config(**decode: Any) -> DecodeConfig:
    """A DecodeConfig from keyword arguments; beam search when ``beam`` or ``n_best`` asks for it."""
    known = {f.name for f in fields(DecodeConfig)}
    unknown = sorted(set(decode) - known)
    if unknown:
        raise TypeError(f"unknown decoding option(s) {', '.join(unknown)}: use {', '.join(sorted(known))}")
    if "method" not in decode and (decode.get("beam", 1) > 1 or decode.get("n_best", 1) > 1):
        decode["method"] = "beam"
    return DecodeConfig(**decode)


def load(checkpoint: str | Path | Sequence[str | Path], *, device: str = "auto", quantize: str = "none",
         backend: str = "torch") -> Model:
    """A checkpoint file, a run directory (its best.pt), or a list of them (an ensemble, which must share one
    tokenizer), on ``device`` (``auto``: a visible GPU, else the CPU; ``cpu``; ``cuda[:N]``); ``quantize="int8"``
    stores the linear and recurrent weights as int8 (CPU). ``backend="onnxruntime"``: ``checkpoint`` is an
    ``nmt export`` directory, decoded in onnxruntime (translate; not score, align or analyze)."""
    return Model(Translator.open(checkpoint if isinstance(checkpoint, str | Path) else list(checkpoint),
                                 quantize, device, backend))


def compose(*overrides: str) -> Config:
    """The typed training config that ``nmt train OVERRIDES`` would run (conf/train.yaml with Hydra overrides,
    e.g. ``"data=multi30k"``, ``"train.max_minutes=10"``); its ``run_dir`` is the run directory the command
    would use (``runs/<name>`` in the current folder). Bad keys and values raise nmt.errors.NMTError."""
    from omegaconf import OmegaConf

    from nmt.cli import main as cli

    argv = cli.prepare_argv("train", list(overrides), Config)
    composed = cli.check_overrides("train", argv)
    run_dir = OmegaConf.select(composed, "hydra.run.dir")
    plain = cli.without_hydra(composed)
    plain.run_dir = str(run_dir)
    return cli.to_config(plain, Config)


@dataclass(frozen=True)
class TrainResult:
    """What a training run left: its directory, checkpoints and dev scores."""

    run_dir: Path
    best: Path | None  # best.pt: the best dev score (train.early_stop_metric)
    last: Path | None  # last.pt: to resume from
    averaged: Path | None  # averaged.pt (train.average_last)
    step: int  # updates done
    best_score: float | None  # the dev BLEU (or loss) of best.pt
    best_step: int
    dev: list[tuple[int, float]]  # (update, dev score) of every validation


def train(cfg: Config, *, runtime: Runtime | None = None) -> TrainResult:
    """Train (or resume, ``train.resume``) the run ``cfg`` describes (see :func:`compose`). ``runtime``: the
    process-wide settings to use; by default none is changed (torch's threads stay as they are, no signal
    handlers: interrupt with KeyboardInterrupt). ``Runtime.install(cfg.train.threads)`` does what the command line
    does."""
    from nmt.training.train import train as train_run

    state = train_run(cfg, runtime or Runtime.untouched())
    run_dir = Path(cfg.run_dir)

    def kept(name: str) -> Path | None:
        return run_dir / name if (run_dir / name).is_file() else None

    best = None if state.best is None or not math.isfinite(state.best) else float(state.best)
    return TrainResult(run_dir, kept("best.pt"), kept("last.pt"), kept("averaged.pt"), state.step, best,
                       state.best_step, [(int(s), float(v)) for s, v in state.history])
