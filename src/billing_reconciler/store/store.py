"""The store: read snapshots, take the apply lock, write inside one transaction.

SQLite (default) or PostgreSQL, through SQLAlchemy/sqlmodel. Writes happen only through
`Store.transaction()`, which holds the store lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL
`pg_advisory_xact_lock`) for the whole apply.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from .. import canonical
from ..money import USD_CREDIT_TYPE_ID, USD_CREDIT_TYPE_NAME
from ..timeutil import utc_now

# The table models and migrations (sqlmodel, pydantic) are imported by init() and
# schema_version() only: plan and apply read and write with SQLAlchemy Core, and a no-op plan
# should not pay for importing the ORM layer.

# Any 64-bit number that is ours: the advisory lock id of the apply lock.
PG_LOCK_ID = 0x6269_6C6C_7265_636E  # "billrecn"


# Keys the readers give items the store has no key for: "id-" + the item's id (plan.readers).
UNKNOWN_ITEM_PREFIX = "id-"


class StoreError(Exception):
    pass


class NotInitialized(StoreError):
    pass


class LockTimeout(StoreError):
    pass


class StoreMissing(NotInitialized):
    """A SQLite store file that does not exist, opened by a command that must not create it."""


class StoreDamaged(StoreError):
    """A store that is neither new nor whole: an empty SQLite file, or tables missing."""


def damaged_tables_message(url: str, missing: list[str]) -> str:
    from .urls import display

    return (f"the store {display(url)} is damaged: its schema is current but it has no table "
            f"{', '.join(missing)}; nothing was read or written. Restore it from a backup (it is not new, "
            "so `init` will not recreate what is missing)")


class StoredItem:
    """A keyed sub-item as stored; its body is parsed on first use (most plans never read it)."""

    __slots__ = ("list_name", "key", "remote_id", "body_text", "archived", "_body")

    def __init__(self, list_name: str, key: str, remote_id: str, body_text: str, archived: bool):
        self.list_name, self.key, self.remote_id = list_name, key, remote_id
        self.body_text, self.archived = body_text, archived
        self._body: dict[str, Any] | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = canonical.loads(self.body_text)
        return self._body

    def __repr__(self) -> str:
        return (f"StoredItem({self.list_name!r}, {self.key!r}, {self.remote_id!r}, "
                f"archived={self.archived})")


class StoredObject:
    """An object as stored. Its spec is parsed on first use, and its sub-items are read (for
    the whole snapshot at once) on first use: a plan reads them only for objects that changed."""

    __slots__ = ("id", "kind", "key", "remote_id", "body_text", "applied_digest", "archived", "_items", "_spec",
                 "_snapshot", "_digest", "refreshed_revision", "backend_revision", "protected", "moved_from",
                 "ignore_changes")

    def __init__(self, id: int, kind: str, key: str, remote_id: str, body_text: str, applied_digest: str,
                 archived: bool, items: list[StoredItem] | None = None, refreshed_revision: int | None = None,
                 backend_revision: int | None = None, *, protected: bool = False, moved_from: tuple[str, ...] = (),
                 ignore_changes: tuple[str, ...] = ()):
        self.id, self.kind, self.key, self.remote_id = id, kind, key, remote_id
        self.body_text, self.applied_digest, self.archived = body_text, applied_digest, archived
        self._items = items
        self._spec: dict[str, Any] | None = None
        self._snapshot: Snapshot | None = None
        self._digest: str | None = None
        # The backend revision the body was read at, and the backend's revision now (embedded).
        self.refreshed_revision, self.backend_revision = refreshed_revision, backend_revision
        # Lifecycle metadata as last applied (v6): metadata.protect, former keys, ignored paths.
        self.protected, self.moved_from, self.ignore_changes = protected, moved_from, ignore_changes

    def refreshed(self, body_text: str) -> None:
        """The body as just read from the backend."""
        self.body_text, self._spec, self._digest = body_text, None, None
        self.refreshed_revision = self.backend_revision

    def __repr__(self) -> str:
        return f"StoredObject({self.address!r}, id={self.remote_id!r}, archived={self.archived})"

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.key}"

    @property
    def items(self) -> list[StoredItem]:
        if self._items is None and self._snapshot is not None:
            self._snapshot.load_items([self])
        if self._items is None:
            self._items = []
        return self._items

    @items.setter
    def items(self, value: list[StoredItem]) -> None:
        self._items = value

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = canonical.loads(self.body_text)
        return self._spec

    @property
    def body_digest(self) -> str:
        """The body's digest, as the applied digest is taken: without ignored paths, if any."""
        if self._digest is None:
            if self.ignore_changes:
                from ..ignorepaths import strip
                from ..specform import spec_digest

                self._digest = spec_digest(strip(self.spec, self.ignore_changes))
            else:
                self._digest = "sha256:" + hashlib.sha256(self.body_text.encode()).hexdigest()
        return self._digest

    @property
    def drifted(self) -> bool:
        """The body no longer is what was last applied: it changed outside the manifests."""
        return self.body_digest != self.applied_digest

    def item_id(self, list_name: str, key: str) -> str | None:
        for item in self.items:
            if item.list_name == list_name and item.key == key and not item.archived:
                return item.remote_id
        if key.startswith(UNKNOWN_ITEM_PREFIX):  # an item made behind the tool's back (plan.readers)
            return key[len(UNKNOWN_ITEM_PREFIX):]
        return None


@dataclass
class Snapshot:
    lineage: str | None
    serial: int
    objects: dict[str, StoredObject]
    # Objects the store maps but the backend no longer holds, or holds archived (set by a refresh).
    gone: dict[str, StoredObject] = field(default_factory=dict)
    # Reads objects' sub-items on first use: (snapshot, objects, all of them?) (set by Store.snapshot).
    items_loader: Callable[[Snapshot, list[StoredObject], bool], None] | None = field(default=None, repr=False, compare=False)
    # The backend's credit types, name -> id (plan/credit_types.py reads them, like a Terraform data
    # source, on every plan); USD until they are read.
    credit_types: dict[str, str] = field(default_factory=lambda: {USD_CREDIT_TYPE_NAME: USD_CREDIT_TYPE_ID})

    @property
    def initialized(self) -> bool:
        return self.lineage is not None

    def load_items(self, objects: Iterable[StoredObject] | None = None) -> None:
        """Read the sub-items of `objects` (default: every object not read yet) in one query."""
        if self.items_loader is None:
            return
        pending = [o for o in (self.objects.values() if objects is None else objects) if o._items is None]
        if pending:
            self.items_loader(self, pending, objects is None or len(pending) == len(self.objects))


def default_sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


class Store:
    def __init__(self, url: str, *, create: bool = True):
        """create=False: a SQLite file that does not exist is StoreMissing, and nothing is made
        (read-only commands); create=True (init): its directories are made."""
        from .urls import display, normalize

        url = normalize(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        path = default_sqlite_path(url)
        if path is not None and str(path) not in ("", ":memory:"):
            if not create and not path.is_file():
                raise StoreMissing(f"the store {display(url)} does not exist; run `billing-reconciler init` "
                                   "(with the same --store) to create it")
            if path.is_file() and path.stat().st_size == 0:
                # SQLite reads a 0-byte file as a new, empty database: that would plan every
                # object as a create (and init would start a new lineage over a lost store).
                raise StoreDamaged(f"the store {display(url)} is an empty file (0 bytes): a truncated or damaged "
                                   "store, not a new one; nothing was read or written. Restore it from a backup, "
                                   "or, to start a new store, delete the file and run `billing-reconciler init`")
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = _make_engine(url)

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(url)

    def close(self) -> None:
        self.engine.dispose()

    # --- setup ---------------------------------------------------------------------------

    def init(self, *, move_events: Callable[[Connection], bool] | None = None) -> tuple[str, bool]:
        """Create or upgrade the tables and the lineage. Returns (lineage, created).

        `move_events(conn)`, for a store at an older schema only: runs first, in the same
        transaction under the store lock, and returns True once every row of the store's old
        `usage_events` is in the events file (`events.move.move_before_upgrade`), so that the
        revision dropping the table may drop them; raising leaves the store as it was."""
        from .migrations import migrate
        from .version import read_schema

        with self.transaction(lock_timeout=30, holder="init") as conn:
            schema = read_schema(conn)
            moved = bool(move_events(conn)) if move_events and schema.known and not schema.current else False
            migrate(conn, events_moved=moved)
            row = conn.execute(text("SELECT lineage FROM state WHERE id = 1")).first()
            if row is not None:  # a store from before digest keys gets one now
                conn.execute(text("UPDATE state SET digest_key = :k WHERE id = 1 AND digest_key IS NULL"),
                             {"k": secrets.token_hex(32)})
                return row[0], False
            lineage = str(uuid.uuid4())
            now = utc_now()
            conn.execute(text("INSERT INTO state (id, lineage, serial, digest_key, created_at, updated_at) "
                              "VALUES (1, :l, 0, :k, :n, :n)"), {"l": lineage, "k": secrets.token_hex(32), "n": now})
            return lineage, True

    def schema_version(self) -> int:
        from .version import current_version

        with self.engine.connect() as conn:
            return current_version(conn)

    def state(self) -> tuple[str | None, int]:
        with self.engine.connect() as conn:
            return _read_state(conn)

    def digest_key(self) -> bytes:
        """The key of the digests standing for secrets in plan files and history (see digest_key_of)."""
        with self.engine.connect() as conn:
            return digest_key_of(conn)

    def locked_state(self, conn: Connection) -> tuple[str, int]:
        """(lineage, serial) read inside a transaction(): what a writer checks before writing."""
        lineage, serial = _read_state(conn)
        if lineage is None:
            raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
        return lineage, serial

    # --- reading -------------------------------------------------------------------------

    def snapshot(self, *, include_archived: bool = False) -> Snapshot:
        """Every object as of one read; sub-items are read on first use, all at once.

        Rows come through the driver's cursor, not SQLAlchemy's result objects, and bodies stay
        text until read: a no-op plan compares digests, and never parses a body or reads the
        sub-items.
        """
        with self.engine.connect() as conn:
            lineage, serial = _read_state(conn)
            if lineage is None:
                return Snapshot(None, 0, {})
            objects: dict[str, StoredObject] = {}
            where = "" if include_archived else " WHERE archived_at IS NULL"
            _check_version(conn)
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute("SELECT o.id, o.kind, o.key, o.remote_id, o.body, o.applied_digest, o.archived_at, "
                               "o.refreshed_revision, e.revision, o.protected, o.moved_from, o.ignore_changes "
                               "FROM objects o "
                               "LEFT JOIN emulator_objects e ON e.id = o.remote_id" + where.replace("archived_at", "o.archived_at"))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        snapshot = Snapshot(lineage, serial, objects, items_loader=self._load_items)
        for row in rows:
            obj = StoredObject(row[0], row[1], row[2], row[3], row[4], row[5], row[6] is not None,
                               refreshed_revision=row[7], backend_revision=row[8], protected=bool(row[9]),
                               moved_from=tuple(json.loads(row[10])) if row[10] else (),
                               ignore_changes=tuple(json.loads(row[11])) if row[11] else ())
            obj._snapshot = snapshot
            objects[f"{row[1]}/{row[2]}"] = obj
        return snapshot

    def _load_items(self, snapshot: Snapshot, objects: list[StoredObject], everything: bool) -> None:
        """Read the sub-items of `objects` (of `snapshot`), refusing if an apply ran since it was taken."""
        by_id = {obj.id: obj for obj in objects}
        for obj in objects:
            obj._items = []
        query = "SELECT owner_id, list_name, key, remote_id, body, archived_at FROM sub_items"
        ids = sorted(by_id)
        # One query for all; for a few objects, one per chunk of ids (ids are integers we read).
        chunks = [None] if everything or len(ids) > 2000 else [ids[i:i + 500] for i in range(0, len(ids), 500)]
        with self.engine.connect() as conn:
            lineage, serial = _read_state(conn)
            if (lineage, serial) != (snapshot.lineage, snapshot.serial):
                raise StoreError(f"the store changed while it was being read (serial {snapshot.serial} -> {serial}: "
                                 "another apply ran); run the command again")
            cursor = conn.connection.driver_connection.cursor()
            try:
                rows = []
                for chunk in chunks:
                    where = "" if chunk is None else f" WHERE owner_id IN ({','.join(str(int(i)) for i in chunk)})"
                    cursor.execute(query + where + " ORDER BY id")
                    rows += cursor.fetchall()
            finally:
                cursor.close()
        for row in rows:
            owner = by_id.get(row[0])
            if owner is not None:
                owner._items.append(StoredItem(row[1], row[2], row[3], row[4], row[5] is not None))

    def backend_body(self, remote_id: str) -> dict[str, Any] | None:
        """The embedded backend's object with this id, as the API returns it."""
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT body FROM emulator_objects WHERE id = :id"), {"id": remote_id}).first()
        return None if row is None else canonical.loads(row[0])

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection (a refresh reads the embedded backend's objects through it)."""
        with self.engine.connect() as conn:
            yield conn
            if conn.in_transaction():
                conn.rollback()

    def history(self, address: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Executed requests, newest first; of one object, under its former keys too (a rename)."""
        query = "SELECT serial, applied_at, op, address, action, request, response, actor FROM edits"
        params: dict[str, Any] = {}
        with self.engine.connect() as conn:
            if address:
                addresses = [address, *self._former_addresses(conn, address)]
                query += " WHERE " + " OR ".join(f"address = :a{i} OR address LIKE :p{i}" for i in range(len(addresses)))
                for i, each in enumerate(addresses):
                    params[f"a{i}"], params[f"p{i}"] = each, each + ".%"
            query += " ORDER BY id DESC"
            if limit:
                query += f" LIMIT {int(limit)}"
            return [
                {"serial": r[0], "applied_at": _as_text(r[1]), "op": r[2], "address": r[3], "action": r[4],
                 "request": canonical.loads(r[5]), "response": canonical.loads(r[6]), "actor": r[7]}
                for r in conn.execute(text(query), params)
            ]

    @staticmethod
    def _former_addresses(conn: Connection, address: str) -> list[str]:
        kind, _, key = address.partition("/")
        try:
            row = conn.execute(text("SELECT moved_from FROM objects WHERE kind = :k AND key = :key"),
                               {"k": kind, "key": key}).first()
        except Exception:  # noqa: BLE001 - a store without objects: no former keys
            if conn.in_transaction():
                conn.rollback()
            return []
        return [f"{kind}/{old}" for old in json.loads(row[0])] if row is not None and row[0] else []

    # --- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, lock_timeout: float = 30.0, holder: str = "") -> Iterator[Connection]:
        """One transaction under the store lock; rolled back on any exception."""
        with self.engine.connect() as conn:
            try:
                _lock(conn, self.is_sqlite, timeout=lock_timeout, url=self.url, holder=holder)
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                if self.is_sqlite:
                    _clear_lock_info(self.url)


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _sqlite_setup(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.execute("PRAGMA foreign_keys = ON")
            dbapi_conn.execute("PRAGMA journal_mode = WAL")
            dbapi_conn.execute("PRAGMA synchronous = NORMAL")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Reads begin deferred; the apply path asks for IMMEDIATE (the write lock) in _lock().
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("immediate") else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


def _lock(conn: Connection, is_sqlite: bool, *, timeout: float, url: str = "", holder: str = "") -> None:
    if is_sqlite:
        _sqlite_lock(conn, timeout, url, holder)
    else:
        _pg_lock(conn, timeout)


def _sqlite_lock(conn: Connection, timeout: float, url: str, holder: str) -> None:
    # BEGIN IMMEDIATE takes the write lock now, not at the first write, so two applies never
    # interleave; the busy timeout makes the second one wait up to --lock-timeout.
    if conn.in_transaction():
        conn.rollback()
    conn.connection.driver_connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.info["immediate"] = True
    try:
        conn.begin()
    except OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise LockTimeout(_sqlite_lock_message(url, timeout)) from None
    finally:
        conn.info["immediate"] = False
    if url:
        _write_lock_info(url, holder)


def _lock_info_path(url: str) -> Path | None:
    path = default_sqlite_path(url)
    return None if path is None else path.with_name(path.name + ".lock-info")


def _write_lock_info(url: str, holder: str) -> None:
    path = _lock_info_path(url)
    if path is not None:
        with contextlib.suppress(OSError):
            path.write_text(json.dumps({"pid": os.getpid(), "holder": holder,
                                        "started_at": utc_now().isoformat()}))


def _clear_lock_info(url: str) -> None:
    path = _lock_info_path(url)
    if path is not None:
        with contextlib.suppress(OSError):
            info = json.loads(path.read_text())
            if info.get("pid") == os.getpid():
                path.unlink()


def _sqlite_lock_message(url: str, timeout: float) -> str:
    from .lockholder import pid_alive, processes_with_open

    path = _lock_info_path(url)
    info: dict[str, Any] = {}
    if path is not None:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
    if info and pid_alive(info.get("pid")):
        return (f"could not take the store lock within {timeout:g}s: another apply is running; held by pid "
                f"{info.get('pid')} ({info.get('holder') or 'apply'}) since {info.get('started_at')}. "
                "Wait for it to finish, or raise --lock-timeout.")
    # Not an apply of ours: another program (sqlite3, a backup tool, a DB browser) has the database locked.
    holders = processes_with_open(default_sqlite_path(url) or "")
    who = ("; programs with the database open: " + ", ".join(holders)) if holders else \
        " (no other process on this machine has it open: one on another machine, over a shared disk?)"
    return (f"could not take the store lock within {timeout:g}s: another program holds the database lock, not a "
            f"billing-reconciler apply{who}. Close that program's transaction (or the program), then run the "
            "command again.")


def _pg_lock(conn: Connection, timeout: float) -> None:
    conn.execute(text(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'"))
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
    except OperationalError as exc:
        if "lock timeout" not in str(exc) and "canceling statement" not in str(exc):
            raise
        conn.rollback()
        since = _pg_lock_holder(conn)
        raise LockTimeout(
            f"could not take the store lock within {timeout:g}s: another apply is running"
            f"{since}. Wait for it to finish, or raise --lock-timeout.") from None
    conn.execute(text("SET LOCAL lock_timeout = 0"))


def _pg_lock_holder(conn: Connection) -> str:
    key_hi, key_lo = (PG_LOCK_ID >> 32) & 0xFFFFFFFF, PG_LOCK_ID & 0xFFFFFFFF
    row = conn.execute(text(
        "SELECT a.pid, a.xact_start, a.application_name FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo"),
        {"hi": key_hi, "lo": key_lo}).first()
    conn.rollback()
    if row is None:
        return ""
    started = row[1].isoformat() if row[1] is not None else "unknown"
    program = f", application '{row[2]}'" if row[2] else ""
    return f"; held by PostgreSQL backend pid {row[0]}{program} since {started}"


def _check_version(conn: Connection) -> None:
    """A store this program cannot read as it is: older (run init) or newer (upgrade the tool)."""
    from .version import LATEST_VERSION, read_schema

    schema = read_schema(conn)
    refusal = schema.refusal()
    if refusal:
        raise StoreError(refusal)
    if not schema.current:
        raise NotInitialized(f"the store has schema v{schema.version}; run `billing-reconciler init` to upgrade it "
                             f"to v{LATEST_VERSION}")


def digest_key_of(conn: Connection) -> bytes:
    """The store's digest key (state.digest_key, made by init). A store whose init predates it
    must run init again: without the key, no plan file or history row could be written safely."""
    row = conn.execute(text("SELECT digest_key FROM state WHERE id = 1")).first()
    if row is None or not row[0]:
        raise NotInitialized("the store has no digest key yet (it was initialised by an older build); "
                             "run `billing-reconciler init` to add one")
    return bytes.fromhex(row[0])


def _read_state(conn: Connection) -> tuple[str | None, int]:
    try:
        row = conn.execute(text("SELECT lineage, serial FROM state WHERE id = 1")).first()
    except Exception:  # noqa: BLE001 - no tables yet: not initialised
        if conn.in_transaction():
            conn.rollback()
        return None, 0
    return (row[0], int(row[1])) if row else (None, 0)
