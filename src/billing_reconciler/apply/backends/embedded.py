"""The embedded backend: the Metronome emulator, in the store's own database.

Requests are validated against the API's OpenAPI document and executed by the emulator; its
objects are written in the same transaction as the apply's records, so an apply that fails or is
killed changes neither.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from ...emulator.engine import Emulator
from ...emulator.refusals import RequestRefused
from ...plan.operations import Request
from ...plan.readers import API_TYPES, LISTED_TYPES
from ...store.emulator_repo import EmulatorRepo
from . import BackendError


class EmbeddedSession:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    def execute(self, request: Request) -> dict[str, Any]:
        try:
            return self.emulator.execute(request.method, request.path, request.body)
        except RequestRefused as exc:
            raise BackendError(f"the API refused {request.method} {request.path}: {exc}",
                               status=exc.status, field=exc.field) from None

    def get(self, kind: str, remote_id: str) -> dict[str, Any] | None:
        return self.emulator.get(API_TYPES[kind], remote_id)

    def list(self, kind: str) -> list[dict[str, Any]]:
        return self.emulator.list(LISTED_TYPES[kind])

    def flush(self) -> dict[str, int]:
        return self.emulator.flush()


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, *, validate: bool = True):
        self.validate = validate

    def session(self, conn: Connection) -> EmbeddedSession:
        return EmbeddedSession(self.emulator(conn))

    def emulator(self, conn: Connection) -> Emulator:
        validator = None
        if self.validate:
            from ...emulator.openapi import validate_request as validator
        return Emulator(EmulatorRepo(conn), validate=validator)
