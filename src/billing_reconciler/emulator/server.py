"""The emulator over HTTP: a Starlette app with the billing API's paths, methods and shapes.

`make_app(state, token)`: every write endpoint the engine routes (emulator/engine.py), executed
in its own committed transaction (served_state.py), and the read endpoints of reads.py.

- `Authorization: Bearer <token>` must equal the token (compared in constant time): 401 otherwise.
- Unknown path: 404; a path the API has but this emulator does not serve: 501; a known path with
  another method: 405 (with `Allow`).
- Bodies are parsed with numbers as Decimals (never floats) and answered the same way; a body
  that is not JSON: 400. Refusals are `{"message": "<field>: <what is wrong>"}` with the API's
  status (400 naming the field, 404 unknown id, 409 conflict).
- Any other failure: 500 `{"message": ...}`, the traceback in the server's log only.
Writes (engine calls, a SQLite commit) run in worker threads, one at a time; reads run on the
event loop, from the in-memory mirror.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import canonical
from ..money import normalize
from . import reads
from .engine import ROUTES as WRITE_ROUTES
from .refusals import RequestRefused
from .served_state import ServedState

log = logging.getLogger(__name__)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
WRITE = "write"
MAX_EXPONENT = 100  # |decimal exponent| of a number in a body


class Routes:
    """Path templates -> {method: read handler or WRITE}; literal paths before templated ones."""

    def __init__(self, endpoints: dict[tuple[str, str], Any]):
        self.literal: dict[str, dict[str, Any]] = {}
        templated: dict[str, dict[str, Any]] = {}
        for (method, template), handler in endpoints.items():
            (templated if "{" in template else self.literal).setdefault(template, {})[method] = handler
        ordered = sorted(templated, key=lambda t: -sum(1 for part in t.split("/") if part and "{" not in part))
        self.templated = [(re.compile(re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(t)) + r"\Z"), templated[t])
                          for t in ordered]

    def find(self, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        if path in self.literal:
            return self.literal[path], {}
        for regex, methods in self.templated:
            found = regex.match(path)
            if found:
                return methods, found.groupdict()
        return None


def _routes() -> Routes:
    endpoints: dict[tuple[str, str], Any] = {(r.method, r.template): WRITE for r in WRITE_ROUTES}
    endpoints.update(reads.READS)
    return Routes(endpoints)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps({"message": message}), status_code=status, media_type="application/json",
                    headers=headers)


def _refusal(exc: RequestRefused) -> Response:
    return _error(exc.status, f"{exc.field}: {exc.message}" if exc.field else exc.message)


def _in_api(path: str) -> bool:
    """The API document has this path (with some method)."""
    from .openapi import match

    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        try:
            match(method, path)
            return True
        except RequestRefused:
            continue
    return False


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_float=_decimal, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestRefused(400, None, f"the request body is not valid JSON: {exc}") from None


def _decimal(text: str) -> Decimal:
    """A JSON number read exactly, never through float (as canonical.loads reads them); a huge
    exponent is refused rather than expanded (`1e999999999` would be a billion-digit integer)."""
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise ValueError(f"the number {text[:40]} is out of range")
    return normalize(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def make_app(state: ServedState, token: str) -> Starlette:
    """The ASGI app serving `state`, answering only requests bearing `token`."""
    if not token:
        raise ValueError("the emulator needs a non-empty bearer token")
    expected = f"Bearer {token}".encode()
    routes = _routes()

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        return hmac.compare_digest(given, expected)

    async def endpoint(request: Request) -> Response:
        try:
            if not authorized(request):
                return _error(401, "Unauthorized: send `Authorization: Bearer <token>` with the emulator's token",
                              {"WWW-Authenticate": "Bearer"})
            method, path = request.method, request.url.path
            if len(path) > 1:
                path = path.rstrip("/")  # as the API routes them
            found = routes.find(path)
            if found is None:
                if _in_api(path):
                    return _error(501, f"{method} {path} is an API endpoint this emulator does not implement")
                return _error(404, f"no such endpoint: {method} {path}")
            methods, params = found
            handler = methods.get(method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                return _error(405, f"{path} takes {allowed}, not {method}", {"Allow": allowed})
            body = _parse_body(await request.body())
            if handler is WRITE:
                result = await run_in_threadpool(state.write, method, path, body)
            else:
                # Reads are in memory and short (a page of 100 customers: ~4 ms): a worker thread
                # would cost more than it saves (measured: bench/bench_serve.py).
                result = _read(state, handler, method, path, params, request, body)
            return Response(canonical.dumps(result, sort_keys=False), media_type="application/json")
        except RequestRefused as exc:
            return _refusal(exc)
        except Exception:  # noqa: BLE001 - never a traceback to the client; the log has it
            log.exception("the emulator failed on %s %s", request.method, request.url.path)
            return _error(500, "the emulator failed on this request (its log has the details)")

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])
    app.state.emulator = state
    return app


def _read(state: ServedState, handler, method: str, path: str, params, request: Request, body: Any) -> dict[str, Any]:
    from .openapi import validate_request

    validate_request(method, path, body if method != "GET" else None)
    query: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        query.setdefault(name, []).append(value)
    return handler(state.mirror, params, query, body)
