"""Backends execute requests and report objects as the billing API holds them.

`Backend.session(conn)` binds a backend to the store transaction of one apply or refresh: the
embedded emulator keeps its objects in that transaction; a remote backend ignores it.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.engine import Connection

from ...plan.operations import Request


class BackendSession(Protocol):
    def execute(self, request: Request) -> dict[str, Any]:
        """Send the request; return the response. Raise BackendError to fail the apply."""

    def get(self, kind: str, remote_id: str) -> dict[str, Any] | None:
        """The object as the API's get endpoint returns it (None: no such object)."""

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind, archived ones included (their `archived_at` set)."""

    def flush(self) -> dict[str, int]:
        """Make the session's changes durable in the transaction; {remote id: revision}."""


class Backend(Protocol):
    name: str

    def session(self, conn: Connection) -> BackendSession: ...


class BackendError(Exception):
    """The backend refused a request: its status, the field it names, its message."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field
