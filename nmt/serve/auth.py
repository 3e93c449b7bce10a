"""Who may use the translation routes, and how much: API keys as LibreTranslate takes them (its ``api_key`` field,
or an ``Authorization: Bearer KEY`` header), from a file (``api_keys=FILE``) or an environment variable
(``api_keys_env=NAME``), and requests and characters per minute per key, or per client address when no keys are
set (``req_limit``, ``char_limit``; a key's line in the file may set its own).

A missing or unknown key is 403, a request past a limit 429 (with ``Retry-After``), each with a JSON error that
never repeats the key. Keys are kept only as SHA-256 digests and never logged; :class:`RedactKeys` takes them out
of uvicorn's access log lines should that log be turned on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

from nmt.errors import NMTError
from nmt.serve.config import ServeConfig
from nmt.serve.libre import FORMS

WINDOW_S = 60.0  # the limits are per minute, over a sliding window
_LIMIT = re.compile(r"(req_limit|char_limit)=(\d+)")


@dataclass(frozen=True)
class Limits:
    """What one key (or one client address) may spend per minute; 0: no limit."""

    requests: int = 0
    chars: int = 0


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _file_line(line: str, where: str, default: Limits) -> tuple[str, Limits] | None:
    """One line of a key file: ``KEY [req_limit=N] [char_limit=N]``, ``#`` to the end of the line a comment."""
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    found = dict(m.groups() for m in map(_LIMIT.fullmatch, words[1:]) if m)
    if len(found) != len(words) - 1:  # never quote the line: it holds a key
        raise NMTError(f"{where}: expected KEY [req_limit=N] [char_limit=N] (N >= 0)")
    return _digest(words[0]), Limits(int(found.get("req_limit", default.requests)),
                                     int(found.get("char_limit", default.chars)))


def read_key_file(path: str, default: Limits) -> dict[str, Limits]:
    """The keys of ``path`` (their digests) with their limits; a missing, unreadable or empty file is an NMTError."""
    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise NMTError(f"api_keys={path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise NMTError(f"api_keys={path}: cannot read it ({type(err).__name__})") from None
    keys: dict[str, Limits] = {}
    for n, line in enumerate(lines, 1):
        entry = _file_line(line, f"api_keys={path} line {n}", default)
        if entry is not None:
            if entry[0] in keys:
                raise NMTError(f"api_keys={path} line {n}: the key of an earlier line again")
            keys[entry[0]] = entry[1]
    if not keys:
        raise NMTError(f"api_keys={path} holds no keys (one a line; # starts a comment)")
    return keys


def read_key_env(name: str, default: Limits) -> dict[str, Limits]:
    """The comma-separated keys of environment variable ``name``; unset or empty is an NMTError."""
    if name not in os.environ:
        raise NMTError(f"api_keys_env={name}: no such environment variable")
    keys = {_digest(k.strip()): default for k in os.environ[name].split(",") if k.strip()}
    if not keys:
        raise NMTError(f"api_keys_env={name} holds no keys (comma-separated)")
    return keys


class Window:
    """What each client spent over the last ``span`` seconds of ``clock`` (a sliding window)."""

    def __init__(self, clock: Callable[[], float], span: float = WINDOW_S) -> None:
        self.clock, self.span = clock, span
        self._log: dict[str, deque[tuple[float, int]]] = {}
        self._total: dict[str, int] = {}
        self._calls = 0

    def spend(self, who: str, amount: int, limit: int) -> float:
        """Spend ``amount`` if the window has room under ``limit``, and return 0; else spend nothing and return
        the seconds until it has (inf: ``amount`` alone is over the limit)."""
        now = self.clock()
        self._sweep(now)
        log, total = self._log.setdefault(who, deque()), self._expire(who, now)
        if total + amount > limit:
            if amount > limit:
                return math.inf
            over = total + amount - limit
            for t, spent in log:  # the oldest spending that must leave the window first
                over -= spent
                if over <= 0:
                    return max(t + self.span - now, 0.001)
        log.append((now, amount))
        self._total[who] = total + amount
        return 0.0

    def _expire(self, who: str, now: float) -> int:
        log, total = self._log[who], self._total.get(who, 0)
        while log and log[0][0] <= now - self.span:
            total -= log.popleft()[1]
        self._total[who] = total
        return total

    def _sweep(self, now: float) -> None:
        """Now and then, forget the clients that spent nothing in the window (memory stays bounded)."""
        self._calls += 1
        if self._calls % 1024:
            return
        for who in list(self._log):
            if not self._expire(who, now):
                del self._log[who], self._total[who]


class Guard:
    """The translation routes' dependency (``Depends(guard)``): checks the key and counts the request; the route
    then calls :meth:`charge` with the characters it translates. ``keys``: digests and their limits (None: no keys,
    anyone may ask, under ``limits`` per client address)."""

    def __init__(self, keys: dict[str, Limits] | None, limits: Limits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys, self.limits = keys, limits
        self.requests, self.chars = Window(clock), Window(clock)

    @classmethod
    def from_config(cls, sc: ServeConfig, clock: Callable[[], float] = time.monotonic) -> Guard:
        """The guard of ``nmt serve``'s keys (``api_keys=FILE``, ``api_keys_env=NAME``, both or neither) and
        limits: the limits on a key's line in the file win over the defaults (``req_limit``, ``char_limit``)."""
        default = Limits(sc.req_limit, sc.char_limit)
        if not (sc.api_keys or sc.api_keys_env):
            return cls(None, default, clock)
        keys = read_key_env(sc.api_keys_env, default) if sc.api_keys_env else {}
        return cls({**keys, **(read_key_file(sc.api_keys, default) if sc.api_keys else {})}, default, clock)

    async def __call__(self, request: Request) -> None:
        if self.keys is None:
            who, limits = f"address {request.client.host if request.client else '?'}", self.limits
        else:
            key = await presented_key(request)
            if key is None:
                raise HTTPException(403, "an API key is required: send it as the api_key field or in an "
                                         "Authorization: Bearer header")
            limits = self.keys.get(_digest(key))
            if limits is None:
                raise HTTPException(403, "the API key is not valid")
            who = f"key {_digest(key)[:16]}"
        request.state.client, request.state.limits = who, limits
        if limits.requests:
            _refuse(self.requests.spend(who, 1, limits.requests), f"req_limit={limits.requests} requests")

    def charge(self, request: Request, chars: int) -> None:
        """Count ``chars`` characters against the client's char_limit (429 past it)."""
        limits: Limits = request.state.limits
        if limits.chars:
            wait = self.chars.spend(request.state.client, chars, limits.chars)
            if math.isinf(wait):
                raise HTTPException(413, f"the request has {chars} characters; char_limit={limits.chars} allows "
                                         "fewer in a minute")
            _refuse(wait, f"char_limit={limits.chars} characters")


def _refuse(wait: float, limit: str) -> None:
    if wait:
        raise HTTPException(429, f"too many: {limit} a minute; try again in {math.ceil(wait)} s",
                            headers={"Retry-After": str(math.ceil(wait))})


async def presented_key(request: Request) -> str | None:
    """The key a request carries: an ``Authorization: Bearer`` header, else an ``api_key`` field of the query
    string, a form or multipart body, or a JSON object body (as LibreTranslate reads it)."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    found = request.query_params.get("api_key")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in FORMS:
        found = (await request.form()).get("api_key", found)
    elif ctype == "application/json":
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None  # the route says what is wrong with it
        if isinstance(body, dict) and "api_key" in body:
            found = body["api_key"]
    return found if isinstance(found, str) and found else None


class RedactKeys(logging.Filter):
    """Takes ``api_key=...`` out of uvicorn's access log lines (their path is the third argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            path = re.sub(r"(api_key=)[^&\s]*", r"\1[redacted]", record.args[2])
            record.args = (*record.args[:2], path, *record.args[3:])
        return True
