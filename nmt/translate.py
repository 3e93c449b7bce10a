"""Translate text with a trained checkpoint: batches by tokens over length-sorted input, keeps the input order."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import torch

from nmt import checkpoint
from nmt.config import DecodeConfig, ModelConfig
from nmt.data.batching import collate, token_batches
from nmt.data.tokenizer import Tokenizer
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.quantize import quantize as quantize_model
from nmt.search import Hypothesis, beam_search, greedy, max_lengths

log = logging.getLogger("nmt.translate")


def _search(model, src_ids: list[list[int]], dc: DecodeConfig) -> list[list[Hypothesis]]:
    batch = collate(src_ids, [[] for _ in src_ids], range(len(src_ids))).to(next(model.parameters()).device)
    caps = max_lengths(batch.src_len, dc.max_len_ratio, dc.max_len_extra)
    if dc.method == "greedy":
        if dc.n_best > 1:
            raise NMTError("decode.n_best > 1 needs beam search (decode=beam5)")
        nan = float("nan")  # greedy does not track scores
        return [[Hypothesis(toks, nan, nan)] for toks in greedy(model, batch.src, batch.src_len, caps)]
    if dc.method == "beam":
        if not 1 <= dc.n_best <= dc.beam:
            raise NMTError(f"decode.n_best must be between 1 and decode.beam ({dc.beam})")
        return beam_search(model, batch.src, batch.src_len, caps, beam=dc.beam, alpha=dc.alpha, n_best=dc.n_best)
    raise NMTError(f"unknown decode.method {dc.method!r}: use greedy or beam")


@torch.no_grad()
def decode_all(model, ids: Sequence[Sequence[int]], dc: DecodeConfig) -> list[list[Hypothesis]]:
    """Hypotheses (best first) for each source id list, in input order; empty sources give no hypotheses.

    Sources are sorted by length and batched by ``dc.batch_tokens`` (divided by the beam size for beam search).
    """
    out: list[list[Hypothesis]] = [[] for _ in ids]
    todo = [i for i, x in enumerate(ids) if len(x)]
    lens = [len(ids[i]) for i in todo]
    budget = max(dc.batch_tokens // (dc.beam if dc.method == "beam" else 1), 1)
    for group in token_batches(lens, lens, budget, shuffle=False):
        rows = [todo[j] for j in group]
        for i, hyps in zip(rows, _search(model, [list(ids[i]) for i in rows], dc), strict=True):
            out[i] = hyps
    return out


def translate_ids(model, ids: Sequence[Sequence[int]], dc: DecodeConfig) -> list[list[int]]:
    """The best output ids for each source id list, in input order (empty for an empty source)."""
    return [h[0].tokens if h else [] for h in decode_all(model, ids, dc)]


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
        self.config = ckpt.get("config", {})
        self.step = ckpt.get("step")

    @classmethod
    def load(cls, path: str, quantize: str = "none") -> Translator:
        """The checkpoint at ``path``; ``quantize="int8"`` stores its linear and GRU weights as int8."""
        ckpt = checkpoint.load(path)
        try:
            translator = cls(ckpt)
        except NMTError as err:
            raise NMTError(f"{path}: {err}") from None
        translator.model = quantize_model(translator.model, quantize)
        return translator

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
                  first_line: int = 1) -> list[str]:
        """One translation per input line, in input order; empty lines give empty lines."""
        ids = self.encode(lines, max_input_len, first_line)
        hyps = translate_ids(self.model, ids, dc)
        return [text if x else "" for x, text in zip(ids, self.tokenizer.decode_tgt(hyps), strict=True)]

    def nbest(self, lines: Sequence[str], dc: DecodeConfig, *, max_input_len: int = 250,
              first_line: int = 1) -> list[str]:
        """Moses-format n-best lines ``id ||| translation ||| score`` (id: 0-based input line; score: the
        length-normalised log-probability that ranks them), ``dc.n_best`` per non-empty input line."""
        out = []
        for offset, hyps in enumerate(decode_all(self.model, self.encode(lines, max_input_len, first_line), dc)):
            texts = self.tokenizer.decode_tgt([h.tokens for h in hyps]) if hyps else []
            out += [f"{first_line - 1 + offset} ||| {t} ||| {h.score:.4f}" for t, h in zip(texts, hyps, strict=True)]
        return out


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
