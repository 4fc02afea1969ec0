"""How the emulator refuses a request: the API's status code, the field at fault, the message."""

from __future__ import annotations


class RequestRefused(Exception):
    """The API's refusal of a request: HTTP status, the field at fault (None: the whole request)."""

    def __init__(self, status: int, field: str | None, message: str):
        super().__init__(status, field, message)
        self.status = status
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.message} (HTTP {self.status})"


def refused(status: int, message: str, field: str | None = None) -> RequestRefused:
    return RequestRefused(status, field, message)
