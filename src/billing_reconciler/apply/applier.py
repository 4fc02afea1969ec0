"""Execute a plan's operations, in order, in ONE transaction under the store lock.

The applier runs exactly the operations in the plan and nothing else: it resolves the ids of
objects made earlier in the apply, sends each request to the backend, and records the request
and the response. It never writes an object from a manifest: once every request has run, it
reads each object it touched back from the backend and stores what the backend holds (through
the readers), with the digest of the manifest applied. A wrong request body therefore shows up as
a difference on the next plan. Any failure rolls the whole apply back (store and embedded
backend together) and names the operation, the field and the API's message; a killed process
leaves both as they were, because nothing is committed until the last operation has run.
"""

from __future__ import annotations

import functools
import itertools
import json
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
from ..plan.readers import Keys, read
from ..specform import KEYED_LISTS, spec_text
from ..store.store import NotInitialized, Store
from ..timeutil import format_timestamp, utc_now
from .backends import Backend, BackendSession


class ApplyError(Exception):
    def __init__(self, index: int, op: Operation, cause: BaseException):
        self.index, self.op, self.cause = index, op, cause
        super().__init__(f"operation {index + 1} ({op.op} {op.address}) failed: {cause}. "
                         "Nothing was applied: the store and the backend are exactly as before this apply.")


@dataclass
class ApplyResult:
    serial: int
    applied: list[tuple[Operation, dict[str, Any]]] = field(default_factory=list)


def apply_plan(store: Store, plan: Plan, backend: Backend, *, lock_timeout: float = 30.0, actor: str = "",
               progress: Callable[[int, Operation], None] | None = None) -> ApplyResult:
    if plan.errored:
        raise ValueError("this plan has errors and cannot be applied")
    if store.state()[0] is None:  # no tables, or no state row: checked again under the lock
        raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
    with store.transaction(lock_timeout=lock_timeout, holder=actor) as conn:
        row = conn.execute(text("SELECT lineage, serial FROM state WHERE id = 1")).first()
        if row is None:
            raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
        check_fresh(plan, row[0], int(row[1]))
        serial = int(row[1]) + 1
        now = utc_now()
        session = backend.session(conn)
        writer = StateWriter(conn, now)
        ids: dict[str, str] = {}
        result = ApplyResult(serial)
        for index, op in enumerate(plan.operations):
            try:
                request, body_text = resolve_text(op.request, ids, now)
                response = session.execute(request)
                remote_id = _remote_id(op, response, writer)
                if op.op in OBJECT_CREATES:
                    ids[op.address] = remote_id
                added = _added_items(op, session, remote_id, writer)
                for item_ref, item_id in added.items():
                    ids[f"{op.address}.{item_ref}"] = item_id
                writer.write(op, remote_id, added, index)
                writer.record(serial, op, request, body_text, response, actor, index)
            except WriteError as exc:
                raise ApplyError(exc.index, plan.operations[exc.index], exc.cause) from exc.cause
            except Exception as exc:  # noqa: BLE001 - any failure aborts the whole apply
                raise ApplyError(index, op, exc) from exc
            result.applied.append((op, response))
            if progress is not None:
                progress(index, op)
        try:
            revisions = session.flush()
            writer.finish(session, revisions)
        except WriteError as exc:
            raise ApplyError(exc.index, plan.operations[exc.index], exc.cause) from exc.cause
        conn.execute(text("UPDATE state SET serial = :s, updated_at = :n WHERE id = 1"), {"s": serial, "n": now})
    return result


def _remote_id(op: Operation, response: dict[str, Any], writer: StateWriter) -> str:
    if op.op in OBJECT_CREATES:
        return response["data"]["id"]
    known = writer.remote_ids.get((op.kind, op.key))
    if known is None:
        raise KeyError(f"{op.address} is not in the store")
    return known


def _added_items(op: Operation, session: BackendSession, remote_id: str, writer: StateWriter) -> dict[str, str]:
    """`list[key]` -> id of each item the operation added, read back from the backend: the new
    ids of each list, in order, are the operation's added items of that list, in order."""
    adds: dict[str, list[str]] = {}
    for item in op.items:
        if item.effect == "add" and item.list_name in KEYED_LISTS:
            adds.setdefault(item.list_name, []).append(item.key)
    if not adds:
        return {}
    api = session.get(op.kind, remote_id) or {}
    added: dict[str, str] = {}
    for list_name, keys in adds.items():
        fresh = [item["id"] for item in api.get(list_name) or []
                 if item.get("archived_at") is None and item["id"] not in writer.item_keys]
        if len(fresh) != len(keys):
            raise RuntimeError(f"the backend holds {len(fresh)} new {list_name} after the request, "
                               f"expected {len(keys)}")
        for key, item_id in zip(keys, fresh):
            added[f"{list_name}[{key}]"] = item_id
            writer.item_keys[item_id] = key
    return added


def resolve(request: Request, ids: dict[str, str], now: datetime) -> Request:
    """Fill in ids assigned earlier in this apply, and apply-time values."""
    return resolve_text(request, ids, now)[0]


def resolve_text(request: Request, ids: dict[str, str], now: datetime) -> tuple[Request, str]:
    """The resolved request and its body as canonical JSON text (what the history records)."""
    raw = canonical.dumps(request.body)
    if "${" not in raw and "${" not in request.path:
        return request, raw
    next_hour = format_timestamp((now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) + (f".{match.group(2)[1:]}" if match.group(2) else "")
        if name not in ids:
            raise KeyError(f"no id known for {name}: it is neither in the store nor created earlier in this plan")
        return ids[name]

    raw = PLACEHOLDER.sub(fill, raw.replace(APPLY_TIME_HOUR, next_hour))
    path = PLACEHOLDER.sub(fill, request.path)
    if "${" in raw or "${" in path:
        raise ValueError(f"unresolved placeholder in the request: {_unresolved(raw + path)}")
    return Request(request.method, path, canonical.loads(raw)), raw


def _unresolved(text: str) -> str:
    start = text.index("${")
    end = text.find("}", start)
    return text[start:end + 1 if end >= 0 else start + 40]


class WriteError(Exception):
    """A queued store write failed; `index` is the operation that queued it."""

    def __init__(self, index: int, cause: BaseException):
        super().__init__(str(cause))
        self.index, self.cause = index, cause


# A sub-item names its owner by kind and key; the owner's row id never changes (an object
# re-created after an archive keeps its row), so this is the same id whenever it is evaluated.
_OWNER = "(SELECT id FROM objects WHERE kind = :ok AND key = :okey)"
_INSERT_OBJECT = ("INSERT INTO objects (kind, key, remote_id, body, applied_digest, refreshed_revision, created_at, "
                  "updated_at) VALUES (:k, :key, :r, :b, :d, :v, :n, :n)")
_RECREATE_OBJECT = ("UPDATE objects SET remote_id = :r, body = :b, applied_digest = :d, refreshed_revision = :v, "
                    "archived_at = NULL, updated_at = :n WHERE kind = :k AND key = :key")
_ARCHIVE_OBJECT = ("UPDATE objects SET body = :b, applied_digest = :d, refreshed_revision = :v, archived_at = :n, "
                   "updated_at = :n WHERE kind = :k AND key = :key")
_UPDATE_OBJECT = ("UPDATE objects SET body = :b, applied_digest = :d, refreshed_revision = :v, updated_at = :n "
                  "WHERE kind = :k AND key = :key")
_END_ALL_ITEMS = f"UPDATE sub_items SET archived_at = :n WHERE owner_id = {_OWNER} AND archived_at IS NULL"
_ARCHIVE_ITEM = (f"UPDATE sub_items SET archived_at = :n WHERE owner_id = {_OWNER} AND list_name = :l "
                 "AND key = :k AND archived_at IS NULL")
_ADD_ITEM = (f"INSERT INTO sub_items (owner_id, list_name, key, remote_id, body, created_at) "
             f"VALUES ({_OWNER}, :l, :k, :r, :b, :n)")
# PostgreSQL: the owner's id is known (read at the start, returned by the inserts) and sent as is;
# a sub-select per row in a 500-row INSERT costs the server more than the insert itself.
_ADD_ITEM_BY_ID = ("INSERT INTO sub_items (owner_id, list_name, key, remote_id, body, created_at) "
                   "VALUES (:o, :l, :k, :r, :b, :n)")
_INSERT_EDIT = ("INSERT INTO edits (serial, applied_at, op, address, action, request, response, actor) "
                "VALUES (:s, :t, :op, :a, :act, :req, :resp, :actor)")
_NAMED = re.compile(r":([a-z]+)\b")


_INSERT_VALUES = re.compile(r"^(INSERT INTO .*? VALUES )(\(.*\))$", re.S)
_MULTI_ROW = 500  # rows per INSERT on PostgreSQL (at most 8 parameters a row; the limit is 65,535)


@functools.lru_cache(maxsize=32)
def _values_list(template: str, count: int) -> str:
    """`(:a, :b), (:a, :b)` for `count` rows -> `($1, $2), ($3, $4)`."""
    numbers = itertools.count(1)
    return ",".join(_NAMED.sub(lambda _m: f"${next(numbers)}", template) for _ in range(count))


def _insert_multi_row(conn: Connection, statement: str, rows: list[dict[str, Any]], returning: str = "") -> list:
    """PostgreSQL: many rows per INSERT ... VALUES (...), (...): one statement and one round
    trip per 500 rows instead of one per row, in the rows' order. Written with $n placeholders
    for a raw cursor: psycopg would otherwise re-parse each long query text for %s. Returns
    the rows of `returning` (e.g. " RETURNING kind, key, id"), if asked."""
    import psycopg

    match = _INSERT_VALUES.match(statement)
    assert match is not None
    head, template = match.groups()
    names = _NAMED.findall(template)
    returned: list = []
    cursor = psycopg.RawCursor(conn.connection.driver_connection)
    try:
        for start in range(0, len(rows), _MULTI_ROW):
            chunk = rows[start:start + _MULTI_ROW]
            cursor.execute(head + _values_list(template, len(chunk)) + returning,
                           [row[name] for row in chunk for name in names])
            if returning:
                returned += cursor.fetchall()
    finally:
        cursor.close()
    return returned


class _Queue:
    """Statements of one table in the order they were made; runs of the same statement are
    sent together."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[tuple[int, dict[str, Any]]]]] = []
        self.size = 0

    def add(self, statement: str, index: int, params: dict[str, Any]) -> None:
        if self.runs and self.runs[-1][0] is statement:
            self.runs[-1][1].append((index, params))
        else:
            self.runs.append((statement, [(index, params)]))
        self.size += 1

    def take(self) -> list[tuple[str, list[tuple[int, dict[str, Any]]]]]:
        runs, self.runs, self.size = self.runs, [], 0
        return runs


class StateWriter:
    """Brings the store in line with executed operations: the key <-> id mapping of objects and
    their keyed items as each operation runs, then (finish) each touched object as the backend
    now holds it, with the digest of the manifest applied, and the history.

    Writes are queued per table and sent in batches (executemany), not one statement per row:
    object statements, then sub-item statements (which find their owner by kind and key), then
    history rows. Everything is in the apply's one transaction, so batching changes nothing a
    reader sees. History rows are flushed as they pile up, to bound memory.
    """

    BATCH = 5000  # history rows queued before a flush

    def __init__(self, conn: Connection, now: datetime):
        self.conn = conn
        self.pyformat = conn.dialect.name != "sqlite"
        # SQLite stores timestamps as the text its driver makes of a datetime (isoformat with a
        # space); made once here instead of once per row. PostgreSQL takes the datetime itself.
        self.now: Any = now.isoformat(" ") if not self.pyformat else now
        # Row ids by (kind, key); None for an object inserted but not yet flushed.
        self.ids: dict[tuple[str, str], int | None] = {}
        self.remote_ids: dict[tuple[str, str], str] = {}
        self.applied: dict[tuple[str, str], str] = {}
        self.object_keys: dict[str, str] = {}  # remote id -> key, for the readers
        for row_id, kind, key, remote_id, digest in conn.execute(
                text("SELECT id, kind, key, remote_id, applied_digest FROM objects")):
            self.ids[(kind, key)] = row_id
            self.remote_ids[(kind, key)] = remote_id
            self.applied[(kind, key)] = digest
            self.object_keys[remote_id] = key
        self.item_keys: dict[str, str] = {row[0]: row[1] for row in conn.execute(
            text("SELECT remote_id, key FROM sub_items"))}
        # (kind, key) -> [remote id, new digest or None, created?, archived?] of every object touched.
        self.touched: dict[tuple[str, str], list[Any]] = {}
        self.objects, self.items, self.edits = _Queue(), _Queue(), _Queue()

    def write(self, op: Operation, remote_id: str, added: dict[str, str], index: int = 0) -> None:
        kind, key = op.kind, op.key
        owner = {"ok": kind, "okey": key}
        entry = self.touched.setdefault((kind, key), [remote_id, None, False, False, index])
        entry[4] = index
        if op.op in OBJECT_CREATES:
            if (kind, key) in self.ids:
                # Re-created after an archive (prune, replace): same key, same row, new object; old items end.
                self.items.add(_END_ALL_ITEMS, index, {"n": self.now, **owner})
            entry[0], entry[2], entry[3] = remote_id, True, False
            self.remote_ids[(kind, key)] = remote_id
            self.object_keys[remote_id] = key
        elif op.op in OBJECT_ARCHIVES:
            entry[3] = True
        if op.spec_digest is not None:
            entry[1] = op.spec_digest
        existed = (kind, key) in self.ids and op.op not in OBJECT_CREATES
        for item in op.items:
            if item.list_name not in KEYED_LISTS:
                continue
            if item.effect == "archive" or (item.effect == "add" and existed):
                # An add under a key the store still maps (the item was archived behind the
                # tool's back) ends the old mapping first.
                self.items.add(_ARCHIVE_ITEM, index, {"n": self.now, "l": item.list_name, "k": item.key, **owner})
            if item.effect == "add":
                self.items.add(_ADD_ITEM, index, {
                    "l": item.list_name, "k": item.key, "n": self.now, "r": added[f"{item.list_name}[{item.key}]"],
                    "b": "{}", **owner})

    def finish(self, session: BackendSession, revisions: dict[str, int]) -> None:
        """Store each touched object as the backend holds it now, then send every queued write."""
        keys = Keys(self.object_keys, self.item_keys)
        for (kind, key), (remote_id, digest, created, archived, index) in self.touched.items():
            api = session.get(kind, remote_id)
            if api is None:
                raise WriteError(index, KeyError(f"the backend has no {kind} {remote_id} after the apply"))
            values = {"k": kind, "key": key, "r": remote_id, "b": spec_text(read(kind, api, keys)),
                      "d": digest or self.applied.get((kind, key), ""), "v": revisions.get(remote_id), "n": self.now}
            if created and (kind, key) in self.ids:
                self.objects.add(_RECREATE_OBJECT, index, values)
            elif created:
                self.objects.add(_INSERT_OBJECT, index, values)
                self.ids[(kind, key)] = None
            elif archived or api.get("archived_at") is not None:
                self.objects.add(_ARCHIVE_OBJECT, index, values)
            else:
                self.objects.add(_UPDATE_OBJECT, index, values)
        self.flush()

    def record(self, serial: int, op: Operation, request: Request, body_text: str | None,
               response: dict[str, Any], actor: str, index: int = 0) -> None:
        if body_text is None:
            body_text = canonical.dumps(request.body)
        # canonical.dumps(request.to_json()), without serialising the body a second time.
        request_text = (f'{{"body":{body_text},"method":{json.dumps(request.method, ensure_ascii=False)},'
                        f'"path":{json.dumps(request.path, ensure_ascii=False)}}}')
        self.edits.add(_INSERT_EDIT, index, {
            "s": serial, "t": self.now, "op": op.op, "a": op.address, "act": op.action.value,
            "req": request_text, "resp": canonical.dumps(response), "actor": actor})
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.edits.size >= self.BATCH:
            self._send(self.edits)

    def flush(self) -> None:
        self._send(self.objects)
        self._send(self.items)
        self._send(self.edits)

    def _send(self, queue: _Queue) -> None:
        """Runs of the same statement as one executemany (SQLite) or 500-row INSERTs (PostgreSQL),
        straight through the driver's cursor: SQLAlchemy's per-row parameter processing cost
        more than the database's own work."""
        cursor = self.conn.connection.driver_connection.cursor()
        try:
            for statement, rows in queue.take():
                if self.pyformat and statement is _ADD_ITEM:
                    statement = _ADD_ITEM_BY_ID
                    rows = [(index, {**params, "o": self.ids[(params["ok"], params["okey"])]}) for index, params in rows]
                sql = _NAMED.sub(r"%(\1)s", statement) if self.pyformat else statement
                # A savepoint per run: if a row fails, the run is undone and replayed row by row
                # to name the operation that failed (the whole apply is rolled back anyway).
                cursor.execute("SAVEPOINT apply_batch")
                try:
                    if self.pyformat and _INSERT_VALUES.match(statement):
                        returning = " RETURNING kind, key, id" if statement is _INSERT_OBJECT else ""
                        for kind, key, row_id in _insert_multi_row(self.conn, statement, [p for _, p in rows], returning):
                            self.ids[(kind, key)] = row_id
                    else:
                        cursor.executemany(sql, [params for _, params in rows])
                except Exception as exc:  # noqa: BLE001 - find and name the operation whose write failed
                    cursor.execute("ROLLBACK TO SAVEPOINT apply_batch")
                    for index, params in rows:
                        try:
                            cursor.execute(sql, params)
                        except Exception as single:  # noqa: BLE001
                            raise WriteError(index, single) from None
                    raise WriteError(rows[-1][0], exc) from None
                cursor.execute("RELEASE SAVEPOINT apply_batch")
        finally:
            cursor.close()
