"""The one writer of the store's own tables: objects, sub-items, history and the serial.

Everything an apply records goes through here, inside the apply's transaction (the emulator's
tables are written by `store.emulator_repo`, in the same transaction). Writes are queued per
table and sent in batches (executemany), not one statement per row: object statements, then
sub-item statements (which find their owner by kind and key), then history rows. Batching
changes nothing a reader sees; history rows are flushed as they pile up, to bound memory. When a
batch fails, it is replayed row by row to name the operation whose write failed (WriteError).

History rows never hold a secret: a value under a credential-like field (or one its manifest
marks sensitive) is recorded as "(sensitive) hmac-sha256:..." keyed with the store's digest key
(redaction.keyed_digest), so a changed secret still shows as a different request.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import canonical
from ..redaction import NO_MARKS, AccountSecrets


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
# Store-only changes (no API call): a rename, and lifecycle metadata as applied.
_MOVE_OBJECT = "UPDATE objects SET key = :new, moved_from = :m, updated_at = :n WHERE kind = :k AND key = :key"
_SET_PROTECTED = "UPDATE objects SET protected = :p, updated_at = :n WHERE kind = :k AND key = :key"
_SET_IGNORED = "UPDATE objects SET ignore_changes = :i, updated_at = :n WHERE kind = :k AND key = :key"
# A new applied digest without an API call (references renamed, ignored paths changed), with the
# body as the backend holds it now, read with the new keys, at the embedded backend's revision
# (NULL for a remote backend: the next plan reads it again).
_SET_DIGEST = ("UPDATE objects SET applied_digest = :d, body = :b, refreshed_revision = "
               "(SELECT revision FROM emulator_objects WHERE emulator_objects.id = objects.remote_id), "
               "updated_at = :n WHERE kind = :k AND key = :key")
_END_ALL_ITEMS = f"UPDATE sub_items SET archived_at = :n WHERE owner_id = {_OWNER} AND archived_at IS NULL"
_ARCHIVE_ITEM = (f"UPDATE sub_items SET archived_at = :n WHERE owner_id = {_OWNER} AND list_name = :l "
                 "AND key = :k AND archived_at IS NULL")
_ADD_ITEM = (f"INSERT INTO sub_items (owner_id, list_name, key, remote_id, body, created_at) "
             f"VALUES ({_OWNER}, :l, :k, :r, :b, :n)")
# PostgreSQL: the owner's id is known (read at the start, returned by the inserts) and sent as is;
# a sub-select per row in a 500-row INSERT costs the server more than the insert itself.
_ADD_ITEM_BY_ID = ("INSERT INTO sub_items (owner_id, list_name, key, remote_id, body, created_at) "
                   "VALUES (:o, :l, :k, :r, :b, :n)")
_INSERT_EDIT = ("INSERT INTO edits (serial, applied_at, op, address, action, request, response, actor, op_index) "
                "VALUES (:s, :t, :op, :a, :act, :req, :resp, :actor, :i)")
_SETTLE_EDIT = "UPDATE edits SET response = :resp, applied_at = :t WHERE serial = :s AND op_index = :i"
_START_APPLY = ("INSERT INTO applies (serial, backend, target, status, operations, started_at) "
                "VALUES (:s, :b, :t, 'running', :o, :n)")
_FINISH_APPLY = "UPDATE applies SET status = :st, finished_at = :n WHERE serial = :s"
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


class StoreWriter:
    """The key <-> id mappings as an apply goes, then each touched object's body as the backend
    holds it, with the digest of the manifest applied; and the history of requests."""

    BATCH = 5000  # history rows queued before a flush

    def __init__(self, conn: Connection, now: datetime, secrets: AccountSecrets = NO_MARKS):
        from .store import digest_key_of

        self.conn = conn
        # What the history hides: the marks of the manifests applied, keyed with the store's key.
        self.secrets = secrets.keyed(digest_key_of(conn))
        self.pyformat = conn.dialect.name != "sqlite"
        # SQLite stores timestamps as the text its driver makes of a datetime (isoformat with a
        # space); made once here instead of once per row. PostgreSQL takes the datetime itself.
        self.now: Any = now.isoformat(" ") if not self.pyformat else now
        self._now = now
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
            text("SELECT remote_id, key FROM sub_items WHERE archived_at IS NULL"))}
        self.objects, self.items, self.edits = _Queue(), _Queue(), _Queue()

    # --- key <-> id mappings --------------------------------------------------------------

    def end_items(self, kind: str, key: str, index: int = 0) -> None:
        """An object made again under its key (prune, replace): its old items end."""
        self.items.add(_END_ALL_ITEMS, index, {"n": self.now, "ok": kind, "okey": key})

    def archive_item(self, kind: str, key: str, list_name: str, item_key: str, index: int = 0) -> None:
        self.items.add(_ARCHIVE_ITEM, index, {"n": self.now, "l": list_name, "k": item_key, "ok": kind, "okey": key})

    def add_item(self, kind: str, key: str, list_name: str, item_key: str, remote_id: str, index: int = 0) -> None:
        self.items.add(_ADD_ITEM, index, {"l": list_name, "k": item_key, "n": self.now, "r": remote_id, "b": "{}",
                                          "ok": kind, "okey": key})
        self.item_keys[remote_id] = item_key

    def map_object(self, kind: str, key: str, remote_id: str) -> None:
        self.remote_ids[(kind, key)] = remote_id
        self.object_keys[remote_id] = key

    # --- store-only changes ---------------------------------------------------------------

    def move_object(self, kind: str, old: str, new: str, index: int = 0) -> None:
        """A rename: the object (its id, items, history) goes on under `new`; `old` joins its
        former keys, which `history` follows."""
        row = self.conn.execute(text("SELECT moved_from FROM objects WHERE kind = :k AND key = :key"),
                                {"k": kind, "key": old}).first()
        if row is None or (kind, new) in self.ids:
            raise WriteError(index, KeyError(f"cannot move {kind}/{old} to {kind}/{new}: "
                                             + ("no such object in the store" if row is None else "the new key is taken")))
        former = [*(json.loads(row[0]) if row[0] else []), old]
        self.objects.add(_MOVE_OBJECT, index, {"new": new, "m": json.dumps(former), "n": self.now, "k": kind,
                                               "key": old})
        for mapping in (self.ids, self.remote_ids, self.applied):
            if (kind, old) in mapping:
                mapping[(kind, new)] = mapping.pop((kind, old))
        remote_id = self.remote_ids.get((kind, new))
        if remote_id is not None:
            self.object_keys[remote_id] = new

    def set_lifecycle(self, kind: str, key: str, *, protected: bool | None = None,
                      ignore_changes: tuple[str, ...] | None = None, digest: str | None = None,
                      body_text: str | None = None, index: int = 0) -> None:
        """metadata.protect / ignore_changes as applied, and the applied digest with the body the
        backend holds now (None: unchanged)."""
        where = {"k": kind, "key": key, "n": self.now}
        if protected is not None:
            self.objects.add(_SET_PROTECTED, index, {**where, "p": bool(protected)})
        if ignore_changes is not None:
            self.objects.add(_SET_IGNORED, index, {**where, "i": json.dumps(list(ignore_changes)) if ignore_changes
                                                   else None})
        if digest is not None:
            self.objects.add(_SET_DIGEST, index, {**where, "d": digest, "b": body_text})
            self.applied[(kind, key)] = digest

    # --- objects --------------------------------------------------------------------------

    def put_object(self, kind: str, key: str, remote_id: str, body_text: str, digest: str | None,
                   revision: int | None, *, created: bool, archived: bool, index: int = 0) -> None:
        """The object as the backend holds it (`body_text`: specform.spec_text of the reader's
        spec), with the digest of the manifest applied (None: unchanged)."""
        values = {"k": kind, "key": key, "r": remote_id, "b": body_text,
                  "d": digest or self.applied.get((kind, key), ""), "v": revision, "n": self.now}
        if created and (kind, key) in self.ids:
            self.objects.add(_RECREATE_OBJECT, index, values)
        elif created:
            self.objects.add(_INSERT_OBJECT, index, values)
            self.ids[(kind, key)] = None
        elif archived:
            self.objects.add(_ARCHIVE_OBJECT, index, values)
        else:
            self.objects.add(_UPDATE_OBJECT, index, values)

    def set_serial(self, serial: int) -> None:
        self.conn.execute(text("UPDATE state SET serial = :s, updated_at = :n WHERE id = 1"),
                          {"s": serial, "n": self._now})

    # --- history --------------------------------------------------------------------------

    def record(self, serial: int, op: str, address: str, action: str, method: str, path: str, body_text: str,
               response: dict[str, Any], actor: str, index: int = 0) -> None:
        redactor = self.secrets(address)
        body_text = redactor.json_text(body_text)
        # canonical.dumps(request.to_json()), without serialising the body a second time.
        request_text = (f'{{"body":{body_text},"method":{json.dumps(method, ensure_ascii=False)},'
                        f'"path":{json.dumps(path, ensure_ascii=False)}}}')
        self.edits.add(_INSERT_EDIT, index, {
            "s": serial, "t": self.now, "op": op, "a": address, "act": action,
            "req": request_text, "resp": redactor.json_text(canonical.dumps(response)), "actor": actor, "i": index})
        self._maybe_flush()

    # --- the journal of a remote apply (each write committed by the caller as it goes) ------

    def rebind(self, conn: Connection, now: datetime) -> None:
        """Carry the mappings read so far into the next transaction of a journaled apply."""
        self.conn, self._now = conn, now
        self.now = now.isoformat(" ") if not self.pyformat else now

    def settle(self, serial: int, index: int, response: dict[str, Any]) -> None:
        """The outcome of a journal row recorded before its request was sent."""
        # An error text may quote the request: credential-named values are hidden as in `record`.
        resp = self.secrets().json_text(canonical.dumps(response))
        self.conn.execute(text(_SETTLE_EDIT), {"resp": resp, "t": self.now, "s": serial,
                                               "i": index})

    def start_apply(self, serial: int, backend: str, target: str, operations: int) -> None:
        self.conn.execute(text(_START_APPLY), {"s": serial, "b": backend, "t": target, "o": operations,
                                               "n": self.now})

    def finish_apply(self, serial: int, status: str) -> None:
        self.conn.execute(text(_FINISH_APPLY), {"st": status, "n": self.now, "s": serial})

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
