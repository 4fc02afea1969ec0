"""The embedded backend: the store itself is the billing system.

It answers as the billing API would: creates get new ids, edits get an edit id and the ids of
what they added. The applier writes the resulting state into the store in the same transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...plan.operations import Operation, Request
from . import BackendError


class EmbeddedBackend:
    name = "embedded"

    def execute(self, op: Operation, request: Request) -> dict[str, Any]:
        if "${" in str(request.body):
            raise BackendError(f"{op.op} for {op.address}: unresolved placeholder in the request")
        response: dict[str, Any] = {"data": {"id": str(uuid.uuid4())}}
        added = {f"{item.list_name}[{item.key}]": str(uuid.uuid4()) for item in op.items if item.effect == "add"}
        if added:
            response["added"] = added
        return response
