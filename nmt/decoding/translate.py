"""Trained checkpoints as a translator of text: :class:`Translator` rebuilds the model (or an ensemble of them)
and its tokenizer on a device, and translates lines (through nmt.decoding.search.decode_all, which batches
length-sorted input and keeps the input order)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch

from nmt import checkpoint
from nmt.choices import Alignment, Quantize
from nmt.config import Config, DecodeConfig
from nmt.config.export import Backend
from nmt.config.pairs import choose_target, parse_pairs, targets
from nmt.data.batching import collate
from nmt.data.load import resolve_path
from nmt.data.tokenizer import UNK, Tokenizer
from nmt.decoding import alignment
from nmt.decoding.device import inference_device
from nmt.decoding.ensemble import Ensemble, restrict_members
from nmt.decoding.ort import OrtModel, open_export
from nmt.decoding.quantize import quantize as quantize_model
from nmt.decoding.rows import Hypothesis
from nmt.decoding.search import decode_all
from nmt.decoding.terms import Term, encode_terms, word_glue
from nmt.errors import NMTError
from nmt.model.base import TranslationModel

log = logging.getLogger("nmt.translate")


class Translator:
    """A model, or an ensemble of models sharing one tokenizer, ready to decode: ``model`` is what search and
    scoring use (nmt.model.contract: Decodable and Scorer), ``members`` the single models in it (one, or each
    member of the ensemble), ``config`` and ``step`` those of the first member's checkpoint. ``model`` given
    (an ONNX export in onnxruntime, :meth:`from_export`): it decodes, and ``members`` is empty."""

    def __init__(self, members: list[TranslationModel], tokenizer: Tokenizer, config: Config, step: int | None,
                 paths: list[Path], model: OrtModel | None = None) -> None:
        self.members, self.tokenizer, self.config, self.step, self.paths = members, tokenizer, config, step, paths
        self.model: TranslationModel | Ensemble | OrtModel = model or (
            members[0] if len(members) == 1 else Ensemble(members).eval())

    @classmethod
    def open(cls, spec: str | Path | Sequence[str | Path], quantize: Quantize | str = Quantize.none,
             device: str = "auto", backend: Backend | str = Backend.torch) -> Translator:
        """A checkpoint (file or run directory), or an ensemble: a list of them, or the command line's
        ``[path,path,...]``, whose members must share their tokenizer. The members score the union of the target
        pieces they saw in training. ``device``: nmt.decoding.device; ``quantize="int8"`` (CPU) stores the linear and
        recurrent weights as int8. ``backend="onnxruntime"``: ``spec`` is an ``nmt export`` directory
        (:meth:`from_export`)."""
        if Backend.parse(backend, "backend") == Backend.onnxruntime:
            return cls.from_export(spec, quantize, device)
        names = checkpoint_paths(str(spec)) if isinstance(spec, str | Path) else [str(p) for p in spec]
        paths = [resolve_path(p) for p in names]
        if not paths:
            raise NMTError("no checkpoint given")
        int8 = Quantize.parse(quantize, "quantize") == Quantize.int8
        where = inference_device("cpu" if int8 and device == "auto" else device)  # int8 runs on the CPU only
        ckpts = [checkpoint.load(p) for p in paths]
        for other in ckpts[1:]:
            for side in ("src", "tgt"):
                if getattr(other.tokenizer, f"{side}_model") != getattr(ckpts[0].tokenizer, f"{side}_model"):
                    raise NMTError(f"ensemble members {paths[0]} and {other.path} have different {side} "
                                   "vocabularies: an ensemble needs one tokenizer")
        members = [c.build_model().to(where) for c in ckpts]
        for c in ckpts:
            _check_pieces(c)
        restrict_members(members, [c.target_pieces for c in ckpts])
        members = [quantize_model(m, quantize) for m in members]
        return cls(members, ckpts[0].tokenizer, ckpts[0].config, ckpts[0].step, paths)

    @classmethod
    def from_export(cls, spec: str | Path | Sequence[str | Path], quantize: Quantize | str = Quantize.none,
                    device: str = "auto") -> Translator:
        """An ``nmt export`` directory decoding in onnxruntime (nmt.decoding.ort): one model, fp32, on the CPU."""
        if not isinstance(spec, str | Path) or str(spec).startswith("["):
            raise NMTError("backend=onnxruntime decodes one export directory, not an ensemble")
        if Quantize.parse(quantize, "quantize") != Quantize.none:
            raise NMTError("quantize=int8 is for backend=torch: an ONNX export decodes in fp32")
        if device not in ("auto", "cpu"):
            raise NMTError(f"backend=onnxruntime runs on the CPU: device={device} is for backend=torch")
        model, tokenizer, config, step, path = open_export(resolve_path(str(spec)), torch.get_num_threads())
        return cls([], tokenizer, config, step, [path], model)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def restrict(self, pieces: torch.Tensor | None) -> None:
        """Search scores only ``pieces`` (and the special ones); None: the whole vocabulary."""
        restrict_members(self.members, [pieces] * len(self.members))

    def source_tag(self, target: str | None = None) -> int | None:
        """The tag piece a multilingual model's sources start with to ask for ``target`` (None: the model's only
        target language); None for a single-pair model. A language the model lacks is one line naming its pairs."""
        data = self.config.data
        lang = choose_target(data.pairs, data.src_lang, data.tgt_lang, target)
        return None if lang is None else self.tokenizer.tag_id(lang)

    @property
    def target_langs(self) -> list[str]:
        """The languages the model translates into: a multilingual model's targets, or its one."""
        data = self.config.data
        return targets(parse_pairs(data.pairs)) if data.pairs else [data.tgt_lang]

    def untagged(self, ids: list[int]) -> int:
        """How many leading pieces of the source ``ids`` are a multilingual model's target tag (0 or 1): word
        alignments and the page speak of the sentence's own words."""
        if not (self.config.data.pairs and ids):
            return 0
        return int(ids[0] in {self.tokenizer.tag_id(lang) for lang in self.target_langs})

    def tagged(self, ids: list[list[int]], target: str | None) -> list[list[int]]:
        """``ids`` with the tag of ``target`` (:meth:`source_tag`) before each non-empty source."""
        tag = self.source_tag(target)
        return ids if tag is None else [[tag, *x] if x else [] for x in ids]

    def encode(self, lines: Sequence[str], max_input_len: int, first_line: int = 1,
               target: str | None = None) -> list[list[int]]:
        """Source piece ids, truncated to ``max_input_len`` with one warning naming the first long line, and led by
        the tag of ``target`` for a multilingual model (:meth:`source_tag`).

        Lone surrogates (which decoding stdin with ``surrogateescape`` can produce, and sentencepiece refuses)
        become U+FFFD, an unknown piece.
        """
        self.source_tag(target)  # a bad target is refused before any work
        ids = self.tokenizer.encode_src([x.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for x in lines])
        long = [i for i, x in enumerate(ids) if len(x) > max_input_len]
        if long:
            log.warning("line %d (and %d more) longer than %d pieces: truncated", first_line + long[0],
                        len(long) - 1, max_input_len)
            ids = [x[:max_input_len] for x in ids]
        return self.tagged(ids, target)

    def translate(self, lines: Sequence[str], dc: DecodeConfig, *, max_input_len: int = 250,
                  first_line: int = 1, on_batch: Callable[[int, int], None] | None = None,
                  prefixes: Sequence[str] | None = None, terms: Sequence[Sequence[str]] | None = None,
                  target: str | None = None) -> list[str]:
        """One translation per input line, in input order, into ``target`` (a multilingual model's target language:
        :meth:`source_tag`); empty lines give empty lines. ``on_batch``: see
        nmt.decoding.search.decode_all. ``prefixes``: per line, the text its translation must start with ("":
        none), e.g. what a translator has typed; the model continues it. ``terms``: per line, target phrases its
        translation must hold (constraints, a glossary's terms: nmt.decoding.terms.sentence_terms); a phrase the
        beam could not place is named in a warning."""
        ids = self.encode(lines, max_input_len, first_line, target)
        found = decode_all(self.model, ids, dc, on_batch, self.encode_prefixes(prefixes, len(lines)),
                           self.encode_terms(terms, len(lines)), self.glue)
        self.warn_missing(found, first_line)
        hyps = [h[0].tokens if h else [] for h in found]
        texts = [text if x else "" for x, text in zip(ids, self.tokenizer.decode_tgt(hyps), strict=True)]
        if dc.alignment == Alignment.none:
            return texts
        show = alignment.hard if dc.alignment == Alignment.hard else None
        return [f"{text} ||| {alignment.moses(show(m)) if show else alignment.soft(m)}"
                for text, m in zip(texts, self.word_alignments(ids, hyps), strict=True)]

    def word_alignments(self, ids: list[list[int]], outputs: list[list[int]], batch: int = 64) -> list[torch.Tensor]:
        """The word-level attention matrix (W, U) of each translation ``outputs`` of the sources ``ids``
        (nmt.decoding.alignment); a model without attention is refused in one line."""
        self.check_alignment(Alignment.hard)
        out = []
        for start in range(0, len(ids), batch):
            src, tgt = ids[start : start + batch], outputs[start : start + batch]
            weights = self._attention([s or [UNK] for s in src], tgt)  # (B, T+1, S)
            for k, (s, t) in enumerate(zip(src, tgt, strict=True)):
                w, lead = weights[k, : len(t), : len(s)], self.untagged(s)
                if lead:  # the tag is no word: its weight shared out over the sentence's pieces
                    w = w[:, lead:] / w[:, lead:].sum(1, keepdim=True).clamp_min(1e-9)
                out.append(alignment.word_matrix(w, self._pieces(s[lead:], "src"), self._pieces(t, "tgt")))
        return out

    def encode_prefixes(self, prefixes: Sequence[str] | None, n: int) -> list[list[int]] | None:
        """Target piece ids of each prefix text ("": none); None without prefixes."""
        if prefixes is None:
            return None
        if len(prefixes) != n:
            raise NMTError(f"{len(prefixes)} prefixes for {n} sentences: give one per sentence (empty for none)")
        return self.tokenizer.encode_tgt([p.strip() for p in prefixes])

    def encode_terms(self, terms: Sequence[Sequence[str]] | None, n: int) -> list[list[Term]] | None:
        """Each line's phrases as target pieces (nmt.decoding.terms.Term); None without any."""
        if terms is None:
            return None
        if len(terms) != n:
            raise NMTError(f"{len(terms)} constraint lists for {n} sentences: give one per sentence (empty: none)")
        return encode_terms(terms, self.tokenizer.encode_tgt)

    @property
    def glue(self) -> list[int]:
        """The target pieces that continue a word (nmt.decoding.terms.word_glue)."""
        if not hasattr(self, "_glue"):
            sp = self.tokenizer.tgt
            self._glue = word_glue([sp.id_to_piece(i) for i in range(sp.get_piece_size())])
        return self._glue

    @staticmethod
    def warn_missing(found: Sequence[Sequence[Hypothesis]], first_line: int) -> None:
        """A warning for each line whose best translation lacks a phrase it was given."""
        for offset, hyps in enumerate(found):
            if hyps and hyps[0].missing:
                log.warning("line %d: could not place %s", first_line + offset,
                            ", ".join(repr(m) for m in hyps[0].missing))

    def check_alignment(self, mode: Alignment) -> None:
        """Refuse ``decode.alignment`` for a model without attention, in one line (before anything is written)."""
        if mode != Alignment.none and not self.members:
            raise NMTError("decode.alignment (teacher-forced attention) needs backend=torch and the checkpoint")
        if mode != Alignment.none and not self.model.attends:
            raise NMTError(f"decode.alignment needs a model with attention (arch=rnnsearch); this one is arch="
                           f"{self.config.model.arch}")

    def _pieces(self, ids: list[int], side: str) -> list[str]:
        sp = self.tokenizer.src if side == "src" else self.tokenizer.tgt
        return [sp.id_to_piece(i) for i in ids]

    def nbest(self, lines: Sequence[str], dc: DecodeConfig, *, max_input_len: int = 250,
              first_line: int = 1, on_batch: Callable[[int, int], None] | None = None,
              prefixes: Sequence[str] | None = None, terms: Sequence[Sequence[str]] | None = None,
              target: str | None = None) -> list[str]:
        """Moses-format n-best lines ``id ||| translation ||| logprob= L ||| score``, ``dc.n_best`` per non-empty
        input line, best first (id: the 0-based input line; L: log p(translation + EOS | source); score: L over
        the length penalty, which ranks them). ``nmt score nbest=... rerank=true`` reads them back."""
        out = []
        ids = self.encode(lines, max_input_len, first_line, target)
        found = decode_all(self.model, ids, dc, on_batch, self.encode_prefixes(prefixes, len(lines)),
                           self.encode_terms(terms, len(lines)), self.glue)
        self.warn_missing(found, first_line)
        for offset, hyps in enumerate(found):
            texts = self.tokenizer.decode_tgt([h.tokens for h in hyps]) if hyps else []
            out += [f"{first_line - 1 + offset} ||| {t} ||| logprob= {h.logprob:.4f} ||| {h.score:.4f}"
                    for t, h in zip(texts, hyps, strict=True)]
        return out

    @torch.no_grad()
    def attention(self, src: list[int], tgt: list[int]) -> torch.Tensor | None:
        """Teacher-forced attention weights (T+1, S) of the target pieces ``tgt`` and EOS over the source pieces
        ``src``: the mean over the members that attend; None when none does."""
        return self._attention([src], [tgt])[0] if self.model.attends else None

    @torch.no_grad()
    def _attention(self, src: list[list[int]], tgt: list[list[int]]) -> torch.Tensor:
        """(B, T+1, S) teacher-forced attention, the mean over the attending members."""
        batch = collate(src, tgt, range(len(src))).to(self.device)
        return torch.stack([m.attention_and_features(batch)[1] for m in self.members if m.attends]).mean(0).cpu()


def _check_pieces(ckpt: checkpoint.Checkpoint) -> None:
    pieces = ckpt.target_pieces
    if pieces is not None and (pieces.dim() != 1 or (len(pieces) and not 0 <= int(pieces.min()) <= int(pieces.max())
                                                     < ckpt.tgt_vocab)):
        raise NMTError(f"{ckpt.path}: damaged checkpoint: its target_pieces do not fit the model (ids outside the "
                       f"target vocabulary of {ckpt.tgt_vocab})")


def checkpoint_paths(spec: str) -> list[str]:
    """The checkpoints a ``checkpoint=`` value names: one path, or ``[a,b,...]`` for an ensemble."""
    if not (spec.startswith("[") and spec.endswith("]")):
        return [spec]
    paths = [p.strip() for p in spec[1:-1].split(",") if p.strip()]
    if not paths:
        raise NMTError("checkpoint=[] names no checkpoint")
    return paths


def chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    """Group lines into lists of ``size`` (bounded memory on long inputs)."""
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf
