"""The HTTP API: LibreTranslate's (``POST /translate``, ``GET /languages``), OpenNMT-py's server
(``POST /translator/translate``, ``GET /models``), ``GET /health``, and nmt's own ``POST /analyze`` (n-best,
attention, gates) and ``POST /score``; the page at ``/``; the OpenAPI schema at ``/docs``.

Every error is a JSON object ``{"error": "..."}`` with a 4xx status: 400 bad JSON, an unknown language pair or
what a model in onnxruntime cannot do (attention, gates, alignments, scores), 403 a missing or unknown API key, 404
an unknown model, 413 a body or request over its limit, 415 a body that is not JSON, 422 wrong types or a sentence
over its length limit, 429 a client past ``req_limit`` or ``char_limit``.

The routes that run the model (``POST`` /translate, /detect, /translator/translate, /analyze, /score) take the
API key and count against the limits (nmt.serve.auth); the page, its static files, /health, /languages, /models
and the schema at /docs stay open: they tell a client what the server offers, and cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from nmt.choices import Alignment
from nmt.config.export import Backend
from nmt.errors import NMTError
from nmt.evaluation.score import score_pairs
from nmt.serve import libre, schemas
from nmt.serve.analysis import analyze, json_number
from nmt.serve.auth import Guard
from nmt.serve.config import ServeConfig
from nmt.serve.engine import ServedModel, clean
from nmt.serve.limits import BodyLimit
from nmt.serve.steering import Steering, steer

STATIC = files("nmt.serve") / "static"


def create_app(models: list[ServedModel], sc: ServeConfig, executor: ThreadPoolExecutor,
               guard: Guard | None = None) -> FastAPI:
    """The app serving ``models`` (their batchers run while the app does; ``executor`` is shut down after);
    ``guard``: who may translate, and how much (default: sc's API keys and limits)."""
    guard = guard or Guard.from_config(sc)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(m.batcher.run()) for m in models]
        yield
        for task in tasks:
            task.cancel()
        executor.shutdown(wait=True)

    app = FastAPI(title="nmt", summary="GRU encoder-decoder translation (Cho et al. 2014; RNNsearch)",
                  lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=sc.max_body_bytes)
    app.state.models, app.state.guard = {m.name: m for m in models}, guard
    _errors(app)
    _info_routes(app, models)
    _translation_routes(app, models, sc, guard)
    _own_routes(app, models, sc, guard)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)  # FastAPI's and Starlette's own (404, 405, bad bodies)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": err.detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = err.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        where = lambda p: ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body"  # noqa: E731
        return JSONResponse({"error": "; ".join(f"{where(p)}: {p.get('msg')}" for p in problems[:5])},
                            status_code=422)

    @app.exception_handler(NMTError)  # what the search refuses that nmt.serve.steering did not foresee
    async def refused(_: Request, err: NMTError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)


def _check(sentences: list[str], sc: ServeConfig, n_best: int = 1) -> None:
    if len(sentences) > sc.max_sentences:
        raise HTTPException(413, f"{len(sentences)} sentences in one request; the limit is max_sentences="
                                 f"{sc.max_sentences}")
    for i, s in enumerate(sentences):
        if len(s) > sc.max_chars:
            raise HTTPException(422, f"sentence {i} has {len(s)} characters; the limit is max_chars={sc.max_chars}")
    if n_best > sc.max_n_best:
        raise HTTPException(422, f"{n_best} hypotheses asked for; the limit is max_n_best={sc.max_n_best}")


def _torch_only(model: ServedModel, what: str) -> None:
    """Refuse ``what`` (a route or a field, named first) of a model in onnxruntime: it reads the teacher-forced
    model (attention, gates, scores), which an export leaves out."""
    if model.backend == Backend.onnxruntime:
        raise HTTPException(400, f"{what}: needs backend=torch and the checkpoint; {model.name} is an nmt export in "
                                 "onnxruntime, which translates but has no teacher-forced model for attention, "
                                 "gates, alignments or scores")


def _attends(model: ServedModel, mode: Alignment, field: str = "alignment") -> None:
    """Refuse a word alignment (asked for in ``field``) from a model without attention, or in onnxruntime."""
    if mode != Alignment.none:
        _torch_only(model, field)
    if mode != Alignment.none and not model.translator.model.attends:
        raise HTTPException(400, f"{field}: word alignments need a model with attention; {model.name} has none")


def _model(models: list[ServedModel], name: str | None) -> ServedModel:
    if name is None:
        return models[0]
    found = [m for m in models if m.name == name]
    if not found:
        raise HTTPException(404, f"unknown model {name!r}; GET /models lists them")
    return found[0]


def _target(model: ServedModel, lang: str | None) -> str | None:
    """The ``target`` field of /analyze for ``model``: one of its target languages (None: its only one)."""
    have = list(dict.fromkeys(t for _, t in model.pairs))
    if lang is not None and lang not in have:
        raise HTTPException(400, f"target: {model.name} translates into {', '.join(have)}, not {lang}")
    return model.target(lang) if lang is not None else None


def _info_routes(app: FastAPI, models: list[ServedModel]) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": [m.name for m in models]}

    @app.get("/models")
    async def list_models() -> list[dict]:
        return [{"model_id": i, **m.describe()} for i, m in enumerate(models)]

    @app.get("/languages")
    async def languages() -> list[dict]:
        """Every served source language and what it translates into, over all pairs of all models."""
        codes: dict[str, set[str]] = {}
        for m in models:
            for src, tgt in m.pairs:
                codes.setdefault(src, set()).add(tgt)
        return [{"code": code, "name": code, "targets": sorted(tgts)} for code, tgts in codes.items()]


def _translation_routes(app: FastAPI, models: list[ServedModel], sc: ServeConfig, guard: Guard) -> None:
    @app.post("/translate", response_model=schemas.LibreResponse, response_model_exclude_none=True,
              dependencies=[Depends(guard)],
              openapi_extra={"requestBody": {"content": {t: {"schema": schemas.LibreRequest.model_json_schema()}
                                                         for t in ("application/json", *libre.FORMS)}}})
    async def translate(request: Request) -> dict:
        """LibreTranslate's /translate (JSON, form or multipart body, or query string), with nmt's ``prefix``,
        ``alignment``, ``constraints``, ``glossary`` and search fields (nmt.serve.steering) beside its own."""
        return await _libre(await libre.read(request), models, sc, lambda n: guard.charge(request, n))

    @app.post("/detect", dependencies=[Depends(guard)])
    async def detect_language(request: Request) -> list[dict]:
        """LibreTranslate's /detect (JSON, form or query string ``q``), among the served source languages."""
        fields = await libre.fields(request)
        if not isinstance(fields.get("q"), str):
            raise HTTPException(422, "q: a string is required")
        guard.charge(request, len(fields["q"]))
        return detect(fields["q"], models)

    @app.post("/translator/translate", response_model=list[list[schemas.OnmtResult]],
              response_model_exclude_unset=True, dependencies=[Depends(guard)])  # "align" if asked; "pred_score" always
    async def onmt(items: list[schemas.OnmtItem], request: Request) -> list[list[dict]]:
        _check([x.src for x in items], sc)
        if any(not 0 <= x.id < len(models) for x in items):
            raise HTTPException(404, f"unknown model id; GET /models lists ids 0 to {len(models) - 1}")
        for x in items:
            _attends(models[x.id], Alignment.hard if x.align else Alignment.none, "align")
        ways = [steer(sc.decode, x, [x.src], prefix=x.prefix, constraints=x.constraints, glossary=x.glossary)
                for x in items]  # all checked before any is charged or searched
        guard.charge(request, sum(len(x.src) for x in items))
        return [list(await asyncio.gather(*(_onmt_item(x, models[x.id], w, sc) for x, w in zip(items, ways,
                                                                                                strict=True))))]


async def _onmt_item(item: schemas.OnmtItem, model: ServedModel, way: Steering, sc: ServeConfig) -> dict:
    """One item of an OpenNMT-py request, translated as ``way`` says: OpenNMT-py's answer for it."""
    (hyps,) = await model.translate([item.src], way.dc, sc.max_input_len, way.prefixes, way.terms)
    out = {"src": item.src, "tgt": model.texts(hyps[:1])[0] if hyps else "", "n_best": 1,
           "pred_score": json_number(hyps[0].logprob) if hyps else None}
    if item.align:
        out["align"] = await model.alignments([item.src], [hyps], Alignment.hard, sc.max_input_len)
    return out


def detect(text: str, models: list[ServedModel]) -> list[dict]:
    """LibreTranslate's /detect among the served source languages: each scored by how well its model's
    sentencepiece vocabulary fits the text (characters per piece: a language's own vocabulary cuts it into longer
    pieces), best first, as confidences that sum to 100."""
    fit: dict[str, float] = {}
    for m in models:  # a multilingual model's joint vocabulary fits each of its source languages alike
        ids = m.translator.tokenizer.encode_src([clean(text)])[0]
        for lang in dict.fromkeys(src for src, _ in m.pairs):
            fit[lang] = max(fit.get(lang, 0.0), len(text.strip()) / max(len(ids), 1))
    total = sum(fit.values()) or 1.0
    return [{"language": lang, "confidence": round(100 * f / total, 1)}
            for lang, f in sorted(fit.items(), key=lambda kv: -kv[1])]


async def _libre(req: schemas.LibreRequest, models: list[ServedModel], sc: ServeConfig,
                 charge: Callable[[int], None]) -> dict:
    """One LibreTranslate request, checked, charged (``charge(characters)``) and translated."""
    lines = [req.q] if isinstance(req.q, str) else req.q
    if req.format != "text":
        raise HTTPException(400, f"format={req.format} is not supported: nmt translates plain text (format=text)")
    way = steer(sc.decode, req, lines, prefix=req.prefix, constraints=req.constraints, glossary=req.glossary,
                one=isinstance(req.q, str), n_best=req.alternatives + 1)
    _check(lines, sc, req.alternatives + 1)
    pair = [m for m in models if any(t == req.target and req.source in ("auto", s) for s, t in m.pairs)]
    if not pair:
        have = ", ".join(dict.fromkeys(f"{s}-{t}" for m in models for s, t in m.pairs))
        raise HTTPException(400, f"no model translates {req.source} to {req.target}; this server has {have}")
    model, target = pair[0], pair[0].target(req.target)
    mode = Alignment(req.alignment)
    _attends(model, mode)
    charge(sum(map(len, lines)))
    hyps = await model.translate(lines, way.dc, sc.max_input_len, way.prefixes, way.terms, target)
    texts = [model.texts(h) if h else [""] for h in hyps]
    one = not isinstance(req.q, list)
    out: dict = {"translatedText": texts[0][0] if one else [t[0] for t in texts]}
    if req.alternatives:
        alts = [t[1:] for t in texts]
        out["alternatives"] = alts[0] if one else alts
    if mode != Alignment.none:
        aligned = await model.alignments(lines, hyps, mode, sc.max_input_len, target)
        out["alignment"] = aligned[0] if one else aligned
    return out


def _own_routes(app: FastAPI, models: list[ServedModel], sc: ServeConfig, guard: Guard) -> None:
    @app.post("/analyze", dependencies=[Depends(guard)])
    async def analyze_one(req: schemas.AnalyzeRequest, request: Request) -> dict:
        _check([req.q], sc, req.n_best)
        model = _model(models, req.model)
        _torch_only(model, "/analyze")  # the page's attention and gates
        way = steer(sc.decode, req, [req.q], prefix=req.prefix, constraints=req.constraints, glossary=req.glossary,
                    n_best=req.n_best)
        mode = Alignment(req.alignment)
        _attends(model, mode)
        target = _target(model, req.target)
        guard.charge(request, len(req.q))
        terms = [clean(t) for t in way.terms[0]] if way.terms else None
        return {"model": model.name, **await model.call(analyze, model.translator, clean(req.q), way.dc,
                                                         sc.max_input_len, clean(req.prefix), terms, mode, target)}

    @app.post("/score", response_model=list[schemas.PairScore], dependencies=[Depends(guard)])
    async def score(req: schemas.ScoreRequest, request: Request) -> list[dict]:
        _check([p.src for p in req.pairs] + [p.tgt for p in req.pairs], sc)
        model = _model(models, req.model)
        _torch_only(model, "/score")
        guard.charge(request, sum(len(p.src) + len(p.tgt) for p in req.pairs))
        src, tgt = [clean(p.src) for p in req.pairs], [clean(p.tgt) for p in req.pairs]
        scores = await model.call(score_pairs, model.translator, src, tgt, sc.decode.batch_tokens)
        return [{"logprob": lp, "pieces": n, "per_piece": lp / n} for lp, n in scores]
