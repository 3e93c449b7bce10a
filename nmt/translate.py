"""A trained checkpoint as a translator of text: :class:`Translator` rebuilds the model and its tokenizer, and
translates lines (through nmt.search.decode_all, which batches length-sorted input and keeps the input order)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

from nmt import checkpoint
from nmt.choices import Quantize
from nmt.config import DecodeConfig, ModelConfig
from nmt.data.load import resolve_path
from nmt.data.tokenizer import Tokenizer
from nmt.ensemble import Ensemble
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.quantize import quantize as quantize_model
from nmt.search import decode_all, decode_best

log = logging.getLogger("nmt.translate")


class Translator:
    """A model and its tokenizer, rebuilt from a self-describing checkpoint."""

    def __init__(self, ckpt: dict) -> None:
        try:
            info = ckpt["model_info"]
            self.tokenizer = Tokenizer(ckpt["tokenizer"]["src"], ckpt["tokenizer"]["tgt"])
            sizes = (info["src_vocab"], info["tgt_vocab"])
            self.model = build_model(ModelConfig(**info["config"]), *sizes)
            weights = ckpt["model"]
        except (KeyError, TypeError, RuntimeError) as err:  # RuntimeError: sentencepiece cannot parse its model
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise NMTError(f"incomplete or damaged checkpoint ({type(err).__name__}: {first})") from None
        if (self.tokenizer.src_vocab_size, self.tokenizer.tgt_vocab_size) != sizes:
            raise NMTError(f"checkpoint's tokenizer ({self.tokenizer.src_vocab_size}, {self.tokenizer.tgt_vocab_size}"
                           f" pieces) and model ({sizes[0]}, {sizes[1]}) disagree on vocabulary sizes")
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as err:  # "Error(s) in loading state_dict ...:" then one line per problem
            detail = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise NMTError(f"checkpoint weights do not fit its model settings: {detail[1] if len(detail) > 1 else err}"
                           ) from None
        self.model.eval()
        self.restrict(ckpt.get("target_pieces"))
        self.config = ckpt.get("config", {})
        self.step = ckpt.get("step")

    def restrict(self, pieces: torch.Tensor | None) -> None:
        """Search scores only the target pieces seen in training, when the checkpoint lists them (nearly half of
        the output layer for a joint vocabulary); None: the whole vocabulary."""
        try:
            self.model.restrict_output(None if pieces is None else torch.as_tensor(pieces))
        except (ValueError, TypeError, RuntimeError) as err:
            raise NMTError(f"damaged checkpoint: its target_pieces do not fit the model ({err})") from None

    @classmethod
    def load(cls, path: str, quantize: Quantize = Quantize.none) -> Translator:
        """The checkpoint at ``path``; ``quantize="int8"`` stores its linear and GRU weights as int8."""
        ckpt = checkpoint.load(path)
        try:
            translator = cls(ckpt)
        except NMTError as err:
            raise NMTError(f"{path}: {err}") from None
        translator.model = quantize_model(translator.model, quantize)
        return translator

    @classmethod
    def open(cls, spec: str, quantize: Quantize = Quantize.none) -> Translator:
        """A checkpoint (file or run directory), or an ensemble written ``[path,path,...]`` (nmt.ensemble), whose
        members must share their tokenizers; the first member gives the settings and the step."""
        paths = checkpoint_paths(spec)
        members = [cls.load(str(resolve_path(p)), quantize) for p in paths]
        first = members[0]
        for path, other in zip(paths[1:], members[1:], strict=True):
            for side in ("src", "tgt"):
                if getattr(other.tokenizer, f"{side}_model") != getattr(first.tokenizer, f"{side}_model"):
                    raise NMTError(f"ensemble members {paths[0]} and {path} have different {side} vocabularies: "
                                   "an ensemble needs one tokenizer")
        if len(members) > 1:  # members may have seen different pieces: the ensemble scores them all
            for m in members:
                m.model.restrict_output(None)
            first.model = Ensemble([m.model for m in members]).eval()
        return first

    def encode(self, lines: Sequence[str], max_input_len: int, first_line: int = 1) -> list[list[int]]:
        """Source piece ids, truncated to ``max_input_len`` with one warning naming the first long line.

        Lone surrogates (which decoding stdin with ``surrogateescape`` can produce, and sentencepiece refuses)
        become U+FFFD, an unknown piece.
        """
        ids = self.tokenizer.encode_src([x.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for x in lines])
        long = [i for i, x in enumerate(ids) if len(x) > max_input_len]
        if long:
            log.warning("line %d (and %d more) longer than %d pieces: truncated", first_line + long[0],
                        len(long) - 1, max_input_len)
            ids = [x[:max_input_len] for x in ids]
        return ids

    def translate(self, lines: Sequence[str], dc: DecodeConfig, *, max_input_len: int = 250,
                  first_line: int = 1, on_batch: Callable[[int, int], None] | None = None) -> list[str]:
        """One translation per input line, in input order; empty lines give empty lines. ``on_batch``: see
        nmt.search.decode_all."""
        ids = self.encode(lines, max_input_len, first_line)
        hyps = decode_best(self.model, ids, dc, on_batch)
        return [text if x else "" for x, text in zip(ids, self.tokenizer.decode_tgt(hyps), strict=True)]

    def nbest(self, lines: Sequence[str], dc: DecodeConfig, *, max_input_len: int = 250,
              first_line: int = 1, on_batch: Callable[[int, int], None] | None = None) -> list[str]:
        """Moses-format n-best lines ``id ||| translation ||| logprob= L ||| score``, ``dc.n_best`` per non-empty
        input line, best first (id: the 0-based input line; L: log p(translation + EOS | source); score: L over
        the length penalty, which ranks them). ``nmt score nbest=... rerank=true`` reads them back."""
        out = []
        ids = self.encode(lines, max_input_len, first_line)
        for offset, hyps in enumerate(decode_all(self.model, ids, dc, on_batch)):
            texts = self.tokenizer.decode_tgt([h.tokens for h in hyps]) if hyps else []
            out += [f"{first_line - 1 + offset} ||| {t} ||| logprob= {h.logprob:.4f} ||| {h.score:.4f}"
                    for t, h in zip(texts, hyps, strict=True)]
        return out


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
