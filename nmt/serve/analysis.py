"""What the page shows of one translation: the source and target pieces, the n-best list, the attention matrix
and word alignment (attention models), and the encoder's update and reset gates at every source piece."""

from __future__ import annotations

import math
from typing import Any

import torch

from nmt.choices import Alignment, CellType
from nmt.config import DecodeConfig
from nmt.decoding import alignment
from nmt.decoding.search import decode_all
from nmt.decoding.translate import Translator
from nmt.model.encoders import reverse_padded
from nmt.plot.gates import gate_trace


def json_number(x: float) -> float | None:
    """JSON has no NaN: greedy search computes no scores."""
    return None if math.isnan(x) else round(x, 4)


@torch.no_grad()
def analyze(translator: Translator, sentence: str, dc: DecodeConfig, max_input_len: int, prefix: str = "",
            terms: list[str] | None = None, mode: Alignment = Alignment.none,
            target: str | None = None) -> dict[str, Any]:
    """One sentence translated as ``dc`` says (starting with ``prefix``, holding ``terms``; into ``target``, a
    multilingual model's target language), with what the model did on the way (plain JSON values); ``mode``: the
    word alignment of the best translation, and both sides' words, as /translate gives it (attention models). A
    multilingual model's source pieces start with its target tag; the words and alignment leave it out."""
    model, tok = translator.model, translator.tokenizer
    ids = translator.encode([sentence], max_input_len, target=target)[0]
    if not ids:
        return {"source_pieces": [], "target_pieces": [], "translation": "", "nbest": [], "attention": None,
                "gates": None, "missing": [], **({"alignment": "", "source_words": [], "target_words": []}
                                                 if mode != Alignment.none else {})}
    starts = translator.encode_prefixes([prefix], 1) if prefix.strip() else None
    held = translator.encode_terms([terms], 1) if terms else None
    hyps = decode_all(model, [ids], dc, prefixes=starts, terms=held, glue=translator.glue if held else ())[0]
    best = hyps[0].tokens
    texts = tok.decode_tgt([h.tokens for h in hyps])
    src, tgt = [tok.src.id_to_piece(i) for i in ids], [tok.tgt.id_to_piece(i) for i in best]
    out = {"source_pieces": src, "target_pieces": [*tgt, "</s>"], "translation": texts[0],
           "nbest": [{"translation": t, "logprob": json_number(h.logprob), "score": json_number(h.score)}
                     for t, h in zip(texts, hyps, strict=True)],
           "attention": None, "gates": _gates(translator, ids), "missing": hyps[0].missing}
    weights = translator.attention(ids, best)  # (T+1, S): one row per target piece and the end of sentence
    if weights is not None:
        out["attention"] = [[round(float(w), 4) for w in row] for row in weights]
    if weights is not None and mode != Alignment.none:
        lead = translator.untagged(ids)
        w = weights[: len(best), lead:]
        out |= _aligned(w / w.sum(1, keepdim=True).clamp_min(1e-9) if lead else w, src[lead:], tgt, mode)
    return out


def _aligned(weights: torch.Tensor, src: list[str], tgt: list[str], mode: Alignment) -> dict[str, Any]:
    """The word alignment of piece weights (T, S) over the source pieces ``src``, and the words of both sides."""
    matrix = alignment.word_matrix(weights, src, tgt)  # (W, U)
    text = alignment.moses(alignment.hard(matrix)) if mode == Alignment.hard else alignment.soft(matrix)
    return {"alignment": text, "source_words": alignment.words(src), "target_words": alignment.words(tgt)}


def _gates(translator: Translator, ids: list[int]) -> dict[str, Any] | None:
    """The forward encoder GRU's update and reset gates, averaged over units, at each source piece (in source
    order, whichever way the encoder reads). None for other units and for a quantized model (packed weights)."""
    model = translator.members[0]  # of an ensemble, the first member's encoder
    rnn = model.encoder.rnn
    if model.cfg.cell_type != CellType.gru or not isinstance(getattr(rnn, "weight_ih_l0", None), torch.Tensor):
        return None
    src, length = torch.tensor([ids], device=model.device), torch.tensor([len(ids)], device=model.device)
    reverse = bool(getattr(model.encoder, "reverse", False))
    x = model.encoder.embed(reverse_padded(src, length) if reverse else src)[0]
    _, resets, updates = gate_trace(rnn, x, model.cfg.reset_after)
    z, r = updates.mean(1), resets.mean(1)
    if reverse:
        z, r = z.flip(0), r.flip(0)
    return {"update": [round(float(v), 4) for v in z], "reset": [round(float(v), 4) for v in r],
            "reading": "right to left" if reverse else "left to right"}
