"""An ASGI middleware in front of the API: POST bodies must be JSON (else 415; LibreTranslate's ``/translate``
also takes a form, a multipart body or only a query string, as its own server does) and at most ``max_bytes``
long (else 413, whether or not the client announced the length), each refused with a JSON error."""

from __future__ import annotations

import json
from typing import Any

FORM_PATHS = ("/translate", "/detect")  # the routes that read forms too (nmt.serve.libre)
FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data", b"")


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype != b"application/json" and not (scope["path"] in FORM_PATHS and ctype in FORMS):
            return await _error(send, 415, f"the body must be JSON (Content-Type: application/json), not "
                                           f"{ctype.decode('latin-1') or 'untyped'}")
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            return await _error(send, 400, "Content-Length is not a number")
        if int(length) > self.max_bytes:
            return await _error(send, 413, f"the body has {int(length)} bytes; the limit is max_body_bytes="
                                           f"{self.max_bytes}")
        received, started = 0, False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _error(send, 413, f"the body is over the limit of max_body_bytes={self.max_bytes}")


async def _error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
