"""Backends execute one operation's request: `execute(op, request) -> response`."""

from __future__ import annotations

from typing import Any, Protocol

from ...plan.operations import Operation, Request


class Backend(Protocol):
    name: str

    def execute(self, op: Operation, request: Request) -> dict[str, Any]:
        """Send the request; return the response. Raise BackendError to fail the apply."""


class BackendError(Exception):
    pass
