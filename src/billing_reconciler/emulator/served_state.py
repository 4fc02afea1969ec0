"""The served emulator's state: a SQLite store in a data directory, mirrored in memory.

The server is the database's only writer. Every write request is one committed transaction
(`write`), serialised by a lock; the objects are also kept in memory (`Mirror`), loaded once at
start and replaced after each commit, so a request reads no table and parses no JSON. A mirror is
never changed once published: a read takes the current one and sees one consistent state, without
waiting for writers.

SQLite runs in WAL mode with `synchronous=NORMAL` (the store's own settings, store/store.py): a
commit survives the server being killed; only a power loss may lose the last commits, acceptable
for an emulator.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import text

from .. import canonical
from ..store.emulator_repo import EmulatorRepo
from .engine import Emulator

DATABASE = "emulator.db"


@dataclass(frozen=True)
class Mirror:
    """Every emulator object, as of one commit. Never mutated after it is published."""

    objects: dict[str, dict[str, Any]]
    index: dict[str, tuple[str, bool]]  # id -> (type, archived)
    aliases: dict[str, tuple[str, ...]]  # ingest alias -> ids of the active customers using it
    _sorted: dict[str, list[str]] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def get(self, type_: str, object_id: str) -> dict[str, Any] | None:
        found = self.index.get(object_id)
        return self.objects[object_id] if found is not None and found[0] == type_ else None

    def ids(self, type_: str) -> list[str]:
        """The ids of every object of a type, in id order (the order pages are cut in)."""
        with self._lock:
            ids = self._sorted.get(type_)
            if ids is None:
                ids = self._sorted[type_] = sorted(i for i, (t, _) in self.index.items() if t == type_)
        return ids

    def list(self, type_: str) -> list[dict[str, Any]]:
        return [self.objects[i] for i in self.ids(type_)]

    @cached_property
    def contracts_by_customer(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for contract in self.list("contract"):
            out.setdefault(contract.get("customer_id"), []).append(contract)
        return out

    @cached_property
    def credit_type_names(self) -> dict[str, str]:
        return {c["id"]: c.get("name", "") for c in self.list("credit_type")}


def _alias_index(objects: dict[str, dict[str, Any]], ids, into: dict[str, tuple[str, ...]],
                 before: dict[str, dict[str, Any]] | None = None) -> dict[str, tuple[str, ...]]:
    """`into` updated for the customers `ids`: their old aliases (in `before`) out, new ones in."""
    for object_id in ids:
        old = (before or {}).get(object_id)
        for alias in (old or {}).get("ingest_aliases") or []:
            into[alias] = tuple(i for i in into.get(alias, ()) if i != object_id)
            if not into[alias]:
                del into[alias]
        obj = objects[object_id]
        if obj.get("archived_at") is None:
            for alias in obj.get("ingest_aliases") or []:
                into[alias] = (*into.get(alias, ()), object_id)
    return into


class _MirroredRepo(EmulatorRepo):
    """EmulatorRepo over a copy of the mirror: reads from memory, writes through flush()."""

    def __init__(self, conn, mirror: Mirror):
        super().__init__(conn)
        self._mirror = mirror
        self._objects = dict(mirror.objects)
        self._index = dict(mirror.index)
        self.changed: dict[str, str] = {}  # id -> type of every object put, flushed or not

    def put(self, type_: str, obj: dict[str, Any]) -> None:
        super().put(type_, obj)
        self.changed[obj["id"]] = type_

    def customers_using(self, aliases: set[str]) -> list[dict[str, Any]]:
        """The customers that may hold one of these aliases (the engine checks which do)."""
        ids = {i for alias in aliases for i in self._mirror.aliases.get(alias, ())}
        ids |= {i for i, t in self.changed.items() if t == "customer"}
        return [self._objects[i] for i in sorted(ids)]

    def published(self) -> Mirror:
        """The mirror after this transaction's changes."""
        customers = [i for i, t in self.changed.items() if t == "customer"]
        aliases = self._mirror.aliases
        if customers:
            aliases = _alias_index(self._objects, customers, dict(aliases), self._mirror.objects)
        return Mirror(self._objects, self._index, aliases)

    def index(self) -> dict[str, tuple[str, bool]]:
        return self._index

    def get(self, object_id: str) -> dict[str, Any] | None:
        return self._objects.get(object_id)

    def list(self, type_: str) -> list[dict[str, Any]]:
        return [self._objects[i] for i in sorted(i for i, (t, _) in self._index.items() if t == type_)]


class ServedState:
    def __init__(self, data_dir: Path, *, validate: bool = True):
        from ..store.store import Store

        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(f"sqlite:///{self.data_dir / DATABASE}")
        self.store.init()  # creates or upgrades the tables (the store's migrations)
        if validate:
            from .openapi import validate_request as validator
        else:
            validator = None
        self._validate = validator
        self._write_lock = threading.Lock()
        self.mirror = self._load()
        # The engine seeds the credit types it knows on first use: do it now, as a commit.
        with self._write_lock:
            self._transaction(lambda emu: None)

    def _load(self) -> Mirror:
        with self.store.reading() as conn:
            rows = conn.execute(text("SELECT id, type, archived, body FROM emulator_objects")).all()
        objects = {r[0]: canonical.loads(r[3]) for r in rows}
        customers = [r[0] for r in rows if r[1] == "customer"]
        return Mirror(objects, {r[0]: (r[1], bool(r[2])) for r in rows}, _alias_index(objects, customers, {}))

    def close(self) -> None:
        self.store.close()

    def write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        """Execute one write request in its own committed transaction; RequestRefused (nothing
        changed) when the API would refuse it."""
        with self._write_lock:
            return self._transaction(lambda emu: emu.execute(method, path, body))

    def _transaction(self, action):
        with self.store.engine.connect() as conn:
            conn.info["immediate"] = True
            try:
                conn.begin()
            finally:
                conn.info["immediate"] = False
            try:
                repo = _MirroredRepo(conn, self.mirror)
                emulator = Emulator(repo, validate=self._validate)
                result = action(emulator)
                emulator.flush()
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        # Published only once committed: a refused or failed request changes nothing.
        self.mirror = repo.published()
        return result
