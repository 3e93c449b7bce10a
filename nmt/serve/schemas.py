"""The request and response bodies of the API (pydantic models: FastAPI checks requests against them and
publishes them in the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Search(BaseModel):
    """How a request's sentences are searched (nmt.serve.steering); an absent field keeps the server's decode
    setting."""

    method: Literal["greedy", "beam", "sample"] | None = None
    beam: int | None = Field(None, ge=1, le=50)  # the beam size (method=beam)
    temperature: float | None = Field(None, gt=0)  # method=sample: the logits divided by this
    topk: int | None = Field(None, ge=0)  # method=sample: from the k likeliest pieces only; 0 all
    topp: float | None = Field(None, gt=0, le=1)  # method=sample: from the nucleus holding this probability
    seed: int | None = Field(None, ge=0, le=2**32 - 1)  # method=sample: the same seed, the same samples


class LibreRequest(Search):
    """LibreTranslate's ``POST /translate``, with nmt's fields (Search's among them)."""

    q: str | list[str]
    source: str = "auto"  # a language code, or auto: any model into ``target``
    target: str
    format: str = "text"  # text; html is refused (400): nmt translates plain text
    alternatives: int = Field(0, ge=0)
    api_key: str | None = None  # the client's API key when the server has keys (nmt.serve.auth); else ignored
    # nmt's extensions
    prefix: str | list[str] | None = None  # the start each translation must take (one per q; "" none)
    alignment: Literal["none", "hard", "soft"] = "none"  # word alignments from attention (attention models)
    constraints: list[str] | list[list[str]] | None = None  # target phrases each translation must hold (per q)
    glossary: dict[str, str] | None = None  # source term -> target term, wherever the source term occurs


class LibreResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's name)
    alternatives: list[str] | list[list[str]] | None = None
    alignment: str | list[str] | None = None  # decode.alignment's format: "0-0 1-2" (hard) or weights (soft)


class OnmtItem(Strict, Search):
    """One sentence of OpenNMT-py's ``POST /translator/translate``: ``id`` picks the model (its index in GET
    /models); nmt's fields beside OpenNMT-py's."""

    src: str
    id: int = 0
    align: bool = False  # the word alignment in the answer, as OpenNMT-py's server gives it with report_align
    prefix: str = ""  # the start the translation must take ("" none)
    constraints: list[str] | None = None  # target phrases the translation must hold
    glossary: dict[str, str] | None = None  # source term -> target term, wherever the source term occurs


class OnmtResult(BaseModel):
    src: str
    tgt: str
    n_best: int
    pred_score: float | None
    align: list[str] | None = None  # Moses "i-j" word pairs (attention models), when asked for


class AnalyzeRequest(Strict, Search):
    """nmt's ``POST /analyze``: one sentence, and what the model did with it."""

    q: str
    model: str | None = None  # a model name from GET /models; the first one when absent
    target: str | None = None  # a multilingual model's target language (GET /models: "pairs")
    n_best: int = Field(1, ge=1)  # hypotheses (beam) or samples (method=sample)
    prefix: str = ""  # the start the translation must take ("" none)
    constraints: list[str] | None = None  # target phrases the translation must hold
    glossary: dict[str, str] | None = None  # source term -> target term, wherever the source term occurs
    alignment: Literal["none", "hard", "soft"] = "none"  # the words of both sides and their alignment (attention)
    api_key: str | None = None  # as LibreTranslate's field (or an Authorization: Bearer header)


class ScorePair(Strict):
    src: str
    tgt: str


class ScoreRequest(Strict):
    """nmt's ``POST /score``: log p(tgt | src) of each pair (Cho et al. 2014's use of the model)."""

    pairs: list[ScorePair]
    model: str | None = None
    api_key: str | None = None  # as LibreTranslate's field (or an Authorization: Bearer header)


class PairScore(BaseModel):
    logprob: float  # summed over the target pieces and the end of sentence
    pieces: int
    per_piece: float
