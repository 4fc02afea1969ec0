"""The embedded backend: the store itself is the billing system.

It answers as the billing API would: creates get new ids, edits get an edit id and the ids of
what they added. The applier writes the resulting state into the store in the same transaction.
"""

from __future__ import annotations

import os
from typing import Any

from ...plan.operations import Operation, Request
from . import BackendError


def new_id() -> str:
    """A random (version 4) UUID as text; uuid.uuid4() costs 10x more, and an apply makes many."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EmbeddedBackend:
    name = "embedded"

    def execute(self, op: Operation, request: Request) -> dict[str, Any]:
        if "${" in request.path:
            raise BackendError(f"{op.op} for {op.address}: unresolved placeholder in the request path")
        # The body's placeholders were checked by the applier when it resolved them (on the text).
        response: dict[str, Any] = {"data": {"id": new_id()}}
        added = {f"{item.list_name}[{item.key}]": new_id() for item in op.items if item.effect == "add"}
        if added:
            response["added"] = added
        return response
