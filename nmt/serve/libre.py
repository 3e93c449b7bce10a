"""LibreTranslate's requests as its own server reads them: a JSON body, a form-encoded or multipart body, and
fields in the query string (LibreTranslate reads ``request.values`` when the body is not JSON). The Python
clients people use send forms: libretranslatepy posts urlencoded fields, others multipart. ``q`` may repeat in a
form or a query string (a list of sentences)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from nmt.serve.schemas import LibreRequest

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
LISTS = ("q", "prefix")  # fields a form or query string may repeat


def _fields(values: Any) -> dict[str, Any]:
    """A query string or form as a dict: repeated ``q`` (or ``prefix``) as a list, other fields once."""
    out: dict[str, Any] = {}
    for key in values.keys():
        got = values.getlist(key)
        out[key] = got if key in LISTS and len(got) > 1 else got[-1]
    return out


async def read(request: Request) -> LibreRequest:
    """The request's fields (:func:`fields`), checked against LibreRequest: a missing or mistyped field is 422,
    as for every JSON route."""
    try:
        return LibreRequest.model_validate(await fields(request))
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from None


async def fields(request: Request) -> dict[str, Any]:
    """The request's fields, the body's over the query string's; a body that is not JSON is 400."""
    out = _fields(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}  # no body: the fields are missing (422), not bad JSON
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(422, "body: the JSON body must be an object with q, source and target")
        out.update(body)
    elif ctype in FORMS:
        out.update(_fields(await request.form()))
    return out
