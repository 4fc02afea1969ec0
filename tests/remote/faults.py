"""Fault-injecting ASGI middleware around the emulator's app (served with serve_in_thread).

Every request draws from one seeded random generator, in arrival order, so a run is
deterministic for a given seed and request sequence. Faults:

- `throttle`: 429 with `Retry-After: 0`, the app not called.
- `error`: 500, the app not called (the request did nothing).
- `lost`: the app runs (its write is committed), then the response is held past the client's
  timeout: the client never learns the outcome.
- `slow`: the request is held past the client's timeout before the app runs (the client gives
  up; the app then runs the request anyway, as a slow server would).
- `kill`: at request number `kill_at`, `on_kill()` is called (e.g. SIGKILL the client) after
  the app ran, before the response leaves.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Faults:
    seed: int = 0
    throttle: float = 0.0
    error: float = 0.0
    lost: float = 0.0
    slow: float = 0.0
    hold: float = 2.0  # seconds a lost or slow response is held (past the client's timeout)
    writes_only: bool = False  # faults only on requests that change something
    kill_at: int | None = None
    on_kill: object = None
    enabled: bool = True
    seen: Counter = field(default_factory=Counter)
    requests: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def wrap(self, app):
        async def middleware(scope, receive, send):
            if scope["type"] != "http" or not self.enabled:
                return await app(scope, receive, send)
            self.requests += 1
            number = self.requests
            write = scope["method"] in ("POST", "PUT") and not _is_read(scope["path"])
            draw = self.random.random()
            fault = None
            if not self.writes_only or write:
                for name in ("throttle", "error", "lost", "slow"):
                    chance = getattr(self, name)
                    if draw < chance:
                        fault = name
                        break
                    draw -= chance
            if self.kill_at is not None and number == self.kill_at:
                fault = "kill"
            if fault:
                self.seen[fault] += 1
            if fault == "throttle":
                return await _respond(send, 429, b'{"message":"injected: rate limited"}', [(b"retry-after", b"0")])
            if fault == "error":
                return await _respond(send, 500, b'{"message":"injected: internal error"}')
            if fault == "slow":
                await asyncio.sleep(self.hold)
                return await app(scope, receive, send)
            if fault in ("lost", "kill"):
                held: list = []

                async def keep(message):
                    held.append(message)

                await app(scope, receive, keep)
                if fault == "kill":
                    self.on_kill()
                await asyncio.sleep(self.hold)
                for message in held:
                    try:
                        await send(message)
                    except Exception:  # noqa: BLE001 - the client is gone
                        return
                return
            return await app(scope, receive, send)
        return middleware


READ_PATHS = ("/get", "/list", "/getRates", "/getRateSchedule", "/getCustomerBillingProviderConfigurations")


def _is_read(path: str) -> bool:
    return path.endswith(READ_PATHS)


async def _respond(send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
