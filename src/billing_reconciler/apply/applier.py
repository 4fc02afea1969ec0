"""Execute a plan's operations, in order, in ONE transaction under the store lock.

The applier runs exactly the operations in the plan and nothing else. Any failure rolls the
whole apply back and names the operation that failed; a killed process leaves the store as it
was, because nothing is committed until the last operation has run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import canonical
from ..plan.operations import APPLY_TIME_HOUR, OBJECT_ARCHIVES, OBJECT_CREATES, PLACEHOLDER, Operation, Request
from ..plan.plan import Plan
from ..plan.planfile import check_fresh
from ..store.store import NotInitialized, Store
from ..timeutil import format_timestamp, utc_now
from .backends import Backend


class ApplyError(Exception):
    def __init__(self, index: int, op: Operation, cause: BaseException):
        self.index, self.op, self.cause = index, op, cause
        super().__init__(f"operation {index + 1} ({op.op} {op.address}) failed: {cause}. "
                         "Nothing was applied: the store is exactly as before this apply.")


@dataclass
class ApplyResult:
    serial: int
    applied: list[tuple[Operation, dict[str, Any]]] = field(default_factory=list)


def apply_plan(store: Store, plan: Plan, backend: Backend, *, lock_timeout: float = 30.0, actor: str = "",
               progress: Callable[[int, Operation], None] | None = None) -> ApplyResult:
    if plan.errored:
        raise ValueError("this plan has errors and cannot be applied")
    with store.transaction(lock_timeout=lock_timeout, holder=actor) as conn:
        row = conn.execute(text("SELECT lineage, serial FROM state WHERE id = 1")).first()
        if row is None:
            raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
        check_fresh(plan, row[0], int(row[1]))
        serial = int(row[1]) + 1
        now = utc_now()
        writer = StateWriter(conn, now)
        ids: dict[str, str] = {}
        result = ApplyResult(serial)
        for index, op in enumerate(plan.operations):
            try:
                request = resolve(op.request, ids, now)
                response = backend.execute(op, request)
                _remember_ids(op, response, ids)
                writer.write(op, response)
                writer.record(serial, op, request, response, actor)
            except Exception as exc:  # noqa: BLE001 - any failure aborts the whole apply
                raise ApplyError(index, op, exc) from exc
            result.applied.append((op, response))
            if progress is not None:
                progress(index, op)
        conn.execute(text("UPDATE state SET serial = :s, updated_at = :n WHERE id = 1"), {"s": serial, "n": now})
    return result


def _remember_ids(op: Operation, response: dict[str, Any], ids: dict[str, str]) -> None:
    if op.op in OBJECT_CREATES:
        ids[op.address] = response["data"]["id"]
    for item_ref, item_id in response.get("added", {}).items():
        ids[f"{op.address}.{item_ref}"] = item_id


def resolve(request: Request, ids: dict[str, str], now: datetime) -> Request:
    """Fill in ids assigned earlier in this apply, and apply-time values."""
    raw = canonical.dumps(request.body)
    if "${" not in raw and "{" not in request.path:
        return request
    next_hour = format_timestamp((now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) + (f".{match.group(2)[1:]}" if match.group(2) else "")
        if name not in ids:
            raise KeyError(f"no id known for {name}: it is neither in the store nor created earlier in this plan")
        return ids[name]

    raw = raw.replace(APPLY_TIME_HOUR, next_hour)
    raw = PLACEHOLDER.sub(fill, raw)
    path = PLACEHOLDER.sub(fill, request.path)
    return Request(request.method, path, canonical.loads(raw))


class StateWriter:
    """Brings the store's objects and sub-items in line with an executed operation."""

    def __init__(self, conn: Connection, now: datetime):
        self.conn, self.now = conn, now

    def _object_id(self, kind: str, key: str) -> int | None:
        row = self.conn.execute(text("SELECT id FROM objects WHERE kind = :k AND key = :key"),
                                {"k": kind, "key": key}).first()
        return None if row is None else int(row[0])

    def write(self, op: Operation, response: dict[str, Any]) -> None:
        kind, key = op.kind, op.key
        object_id = self._object_id(kind, key)
        if op.op in OBJECT_CREATES:
            object_id = self._create_object(kind, key, response["data"]["id"], op, object_id)
        elif op.op in OBJECT_ARCHIVES:
            self.conn.execute(text("UPDATE objects SET archived_at = :n, updated_at = :n WHERE id = :id"),
                              {"n": self.now, "id": object_id})
            return
        elif op.spec_after is not None:
            self.conn.execute(text("UPDATE objects SET body = :b, applied_digest = :d, updated_at = :n WHERE id = :id"),
                              {"b": canonical.dumps(op.spec_after), "d": op.spec_digest, "n": self.now, "id": object_id})
        if object_id is None:
            raise KeyError(f"{op.address} is not in the store")
        added = response.get("added", {})
        for item in op.items:
            if item.effect == "archive":
                self.conn.execute(text(
                    "UPDATE sub_items SET archived_at = :n WHERE owner_id = :o AND list_name = :l AND key = :k "
                    "AND archived_at IS NULL"), {"n": self.now, "o": object_id, "l": item.list_name, "k": item.key})
            elif item.effect == "add":
                self.conn.execute(text(
                    "INSERT INTO sub_items (owner_id, list_name, key, remote_id, body, created_at) "
                    "VALUES (:o, :l, :k, :r, :b, :n)"),
                    {"o": object_id, "l": item.list_name, "k": item.key, "n": self.now,
                     "r": added[f"{item.list_name}[{item.key}]"], "b": canonical.dumps(item.body)})
            else:
                self.conn.execute(text(
                    "UPDATE sub_items SET body = :b WHERE owner_id = :o AND list_name = :l AND key = :k "
                    "AND archived_at IS NULL"),
                    {"b": canonical.dumps(item.body), "o": object_id, "l": item.list_name, "k": item.key})

    def _create_object(self, kind: str, key: str, remote_id: str, op: Operation, existing: int | None) -> int:
        values = {"k": kind, "key": key, "r": remote_id, "b": canonical.dumps(op.spec_after),
                  "d": op.spec_digest, "n": self.now}
        if existing is not None:
            # Re-created after an archive (prune, replace): same key, new object; old items end.
            self.conn.execute(text("UPDATE sub_items SET archived_at = :n WHERE owner_id = :o AND archived_at IS NULL"),
                              {"n": self.now, "o": existing})
            self.conn.execute(text("UPDATE objects SET remote_id = :r, body = :b, applied_digest = :d, "
                                   "archived_at = NULL, updated_at = :n WHERE id = :id"), {**values, "id": existing})
            return existing
        self.conn.execute(text("INSERT INTO objects (kind, key, remote_id, body, applied_digest, created_at, updated_at) "
                               "VALUES (:k, :key, :r, :b, :d, :n, :n)"), values)
        return self._object_id(kind, key)  # type: ignore[return-value]

    def record(self, serial: int, op: Operation, request: Request, response: dict[str, Any], actor: str) -> None:
        self.conn.execute(text(
            "INSERT INTO edits (serial, applied_at, op, address, action, request, response, actor) "
            "VALUES (:s, :t, :op, :a, :act, :req, :resp, :actor)"),
            {"s": serial, "t": self.now, "op": op.op, "a": op.address, "act": op.action.value,
             "req": canonical.dumps(request.to_json()), "resp": canonical.dumps(response), "actor": actor})
