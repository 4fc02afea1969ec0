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

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text

from .. import canonical
from ..plan.operations import APPLY_TIME_HOUR, OBJECT_ARCHIVES, OBJECT_CREATES, PLACEHOLDER, Operation, Request
from ..plan.plan import Plan
from ..plan.planfile import check_fresh
from ..plan.readers import Keys, credit_type_names, read
from ..redaction import NO_MARKS, AccountSecrets
from ..specform import KEYED_LISTS, spec_text
from ..store.store import NotInitialized, Store
from ..store.writer import StoreWriter, WriteError
from ..timeutil import format_timestamp, utc_now
from .backends import Backend, BackendSession


T = TypeVar("T")


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
               progress: Callable[[int, Operation], None] | None = None,
               secrets: AccountSecrets = NO_MARKS) -> ApplyResult:
    """`secrets`: what the manifests mark sensitive, hidden (as keyed digests) in the history."""
    if getattr(backend, "remote", False):  # a remote API: one commit per operation
        from .journal import apply_journaled

        return apply_journaled(store, plan, backend, lock_timeout=lock_timeout, actor=actor, progress=progress,
                               secrets=secrets)
    if plan.errored:
        raise ValueError("this plan has errors and cannot be applied")
    if store.state()[0] is None:  # no tables, or no state row: checked again under the lock
        raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
    with store.transaction(lock_timeout=lock_timeout, holder=actor) as conn:
        serial = _locked_serial(conn, plan) + 1
        session = backend.session(conn)
        writer = StoreWriter(conn, utc_now(), secrets)
        result = ApplyResult(serial)
        _execute(plan, session, writer, serial, actor, result, progress)
        writer.set_serial(serial)
    return result


def what_if(store: Store, plan: Plan, backend: Backend, read: Callable[[BackendSession, StoreWriter], T], *,
            lock_timeout: float = 30.0) -> T:
    """What the backend would hold after the plan: its requests executed inside a transaction
    that is then rolled back, and `read` run on the result before the rollback (plan --usage).
    Only for a backend that keeps its objects in the store's transaction (the embedded emulator)."""
    if plan.errored:
        raise ValueError("this plan has errors and cannot be executed")
    seen: list[T] = []
    try:
        with store.transaction(lock_timeout=lock_timeout, holder="what-if") as conn:
            serial = _locked_serial(conn, plan) + 1
            session = backend.session(conn)
            writer = StoreWriter(conn, utc_now())
            _execute(plan, session, writer, serial, "what-if", ApplyResult(serial), None)
            seen.append(read(session, writer))
            raise _RollBack
    except _RollBack:
        pass
    return seen[0]


class _RollBack(Exception):
    """Raised inside the what-if transaction so that store.transaction() rolls it back."""


def _locked_serial(conn, plan: Plan) -> int:
    row = conn.execute(text("SELECT lineage, serial FROM state WHERE id = 1")).first()
    if row is None:
        raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
    check_fresh(plan, row[0], int(row[1]))
    return int(row[1])


def make_moves(plan: Plan, writer: StoreWriter, serial: int, actor: str) -> None:
    """The plan's renames (store only; WriteError names the one that failed): made before the
    operations, which address each object by its new key."""
    for i, move in enumerate(plan.moves):
        index = len(plan.operations) + i
        writer.move_object(move.kind, move.old, move.new, index)
        writer.record(serial, "move", move.to_address, "move", "", "", canonical.dumps(move.to_json()), {},
                      actor, index)


def make_records(plan: Plan, session: BackendSession, writer: StoreWriter, serial: int, actor: str) -> None:
    """The plan's lifecycle records (protect, ignored paths, a new applied digest), after the
    operations; a new digest stores the body as the backend holds it, read with the new keys."""
    keys = Keys(writer.object_keys, writer.item_keys)
    for i, record in enumerate(plan.records):
        index = len(plan.operations) + len(plan.moves) + i
        body = None
        if record.digest is not None:
            remote_id = writer.remote_ids[(record.kind, record.key)]
            api = session.get(record.kind, remote_id)
            if api is None:
                raise WriteError(index, KeyError(f"the backend has no {record.kind} {remote_id}"))
            body = spec_text(read(record.kind, api, keys))
        writer.set_lifecycle(record.kind, record.key, protected=record.protect,
                             ignore_changes=record.ignore_changes, digest=record.digest, body_text=body,
                             index=index)
        if record.protect is not None or record.ignore_changes is not None:  # not a bare re-digest
            writer.record(serial, "record_lifecycle", record.address, "update", "", "",
                          canonical.dumps(record.to_json()), {}, actor, index)


def _execute(plan: Plan, session: BackendSession, writer: StoreWriter, serial: int, actor: str,
             result: ApplyResult, progress: Callable[[int, Operation], None] | None) -> None:
    """Send each request, map what it made, record it; then store each touched object as read back."""
    now = utc_now()
    touched: dict[tuple[str, str], _Touched] = {}
    ids: dict[str, str] = {}
    # Renames first (store only): the operations that follow address the object by its new key.
    store_only = store_only_operations(plan)
    every = [*plan.operations, *store_only]
    try:
        make_moves(plan, writer, serial, actor)
    except WriteError as exc:
        raise ApplyError(exc.index, every[exc.index], exc.cause) from exc.cause
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
            _map(writer, touched, op, remote_id, added, index)
            writer.record(serial, op.op, op.address, op.action.value, request.method, request.path, body_text,
                          response, actor, index)
        except WriteError as exc:
            raise ApplyError(exc.index, every[exc.index], exc.cause) from exc.cause
        except Exception as exc:  # noqa: BLE001 - any failure aborts the whole apply
            raise ApplyError(index, op, exc) from exc
        result.applied.append((op, response))
        if progress is not None:
            progress(index, op)
    try:
        revisions = session.flush()
        _store_touched(writer, touched, session, revisions)
        make_records(plan, session, writer, serial, actor)
        writer.flush()
    except WriteError as exc:
        raise ApplyError(exc.index, every[exc.index], exc.cause) from exc.cause


def store_only_operations(plan: Plan) -> list[Operation]:
    """The plan's renames and lifecycle records as operations, only to name one that failed."""
    from ..plan.operations import Action

    return [*(Operation("move", m.to_address, Action.UPDATE, Request("", "", m.to_json())) for m in plan.moves),
            *(Operation("record_lifecycle", r.address, Action.UPDATE, Request("", "", r.to_json()))
              for r in plan.records)]


def _remote_id(op: Operation, response: dict[str, Any], writer: StoreWriter) -> str:
    if op.op in OBJECT_CREATES:
        return response["data"]["id"]
    known = writer.remote_ids.get((op.kind, op.key))
    if known is None:
        raise KeyError(f"{op.address} is not in the store")
    return known


def _added_items(op: Operation, session: BackendSession, remote_id: str, writer: StoreWriter) -> dict[str, str]:
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


class _Touched:
    """What the apply did to one object: its id, the digest applied, created/archived, last op."""

    __slots__ = ("remote_id", "digest", "created", "archived", "index")

    def __init__(self, remote_id: str, index: int):
        self.remote_id, self.digest, self.created, self.archived, self.index = remote_id, None, False, False, index


def _map(writer: StoreWriter, touched: dict[tuple[str, str], _Touched], op: Operation, remote_id: str,
         added: dict[str, str], index: int) -> None:
    """Record the key <-> id mappings an executed operation made."""
    kind, key = op.kind, op.key
    entry = touched.setdefault((kind, key), _Touched(remote_id, index))
    entry.index = index
    if op.op in OBJECT_CREATES:
        if (kind, key) in writer.ids:
            writer.end_items(kind, key, index)
        entry.remote_id, entry.created, entry.archived = remote_id, True, False
        writer.map_object(kind, key, remote_id)
    elif op.op in OBJECT_ARCHIVES:
        entry.archived = True
    if op.spec_digest is not None:
        entry.digest = op.spec_digest
    existed = (kind, key) in writer.ids and op.op not in OBJECT_CREATES
    for item in op.items:
        if item.list_name not in KEYED_LISTS:
            continue
        if item.effect == "archive" or (item.effect == "add" and existed):
            # An add under a key the store still maps (the item was archived behind the
            # tool's back) ends the old mapping first.
            writer.archive_item(kind, key, item.list_name, item.key, index)
        if item.effect == "add":
            writer.add_item(kind, key, item.list_name, item.key, added[f"{item.list_name}[{item.key}]"], index)


def _store_touched(writer: StoreWriter, touched: dict[tuple[str, str], _Touched], session: BackendSession,
                   revisions: dict[str, int]) -> None:
    """Each touched object as the backend holds it now, through the readers."""
    keys = Keys(writer.object_keys, writer.item_keys, credit_type_names(session))
    for (kind, key), t in touched.items():
        api = session.get(kind, t.remote_id)
        if api is None:
            raise WriteError(t.index, KeyError(f"the backend has no {kind} {t.remote_id} after the apply"))
        writer.put_object(kind, key, t.remote_id, spec_text(read(kind, api, keys)), t.digest,
                          revisions.get(t.remote_id), created=t.created,
                          archived=t.archived or api.get("archived_at") is not None, index=t.index)


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


