"""The emulator's tables, read and written inside one store transaction.

The emulator engine keeps the objects an apply touches in memory and this module writes them
back in one batch (`flush`), all in the caller's transaction: an apply that fails or is killed
leaves the emulator's objects exactly as they were, together with the rest of the store.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .. import canonical

_UPSERT = ("INSERT INTO emulator_objects (id, type, revision, archived, body) VALUES (:id, :type, :rev, :archived, :body) "
           "ON CONFLICT (id) DO UPDATE SET type = excluded.type, revision = excluded.revision, "
           "archived = excluded.archived, body = excluded.body")


class EmulatorRepo:
    def __init__(self, conn: Connection):
        self.conn = conn
        self._objects: dict[str, dict[str, Any]] = {}
        self._index: dict[str, tuple[str, bool]] | None = None
        self._dirty: dict[str, str] = {}  # id -> type

    # --- reading -------------------------------------------------------------------------

    def index(self) -> dict[str, tuple[str, bool]]:
        """id -> (type, archived) for every object, read once per transaction."""
        if self._index is None:
            self._index = {row[0]: (row[1], bool(row[2])) for row in self.conn.execute(
                text("SELECT id, type, archived FROM emulator_objects"))}
        return self._index

    def get(self, object_id: str) -> dict[str, Any] | None:
        found = self._objects.get(object_id)
        if found is None:
            row = self.conn.execute(text("SELECT body FROM emulator_objects WHERE id = :id"), {"id": object_id}).first()
            if row is None:
                return None
            found = self._objects[object_id] = canonical.loads(row[0])
        return found

    def list(self, type_: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(text("SELECT id, body FROM emulator_objects WHERE type = :t ORDER BY id"),
                                 {"t": type_}).all()
        return [self._objects.get(row[0]) or self._objects.setdefault(row[0], canonical.loads(row[1])) for row in rows]

    # --- writing -------------------------------------------------------------------------

    def put(self, type_: str, obj: dict[str, Any]) -> None:
        """Record a new or changed object; written by flush()."""
        self._objects[obj["id"]] = obj
        self.index()[obj["id"]] = (type_, obj.get("archived_at") is not None)
        self._dirty[obj["id"]] = type_

    def flush(self) -> dict[str, int]:
        """Write every changed object with the next revision; returns {id: revision}."""
        if not self._dirty:
            return {}
        row = self.conn.execute(text("SELECT revision FROM emulator_state WHERE id = 1")).first()
        revision = (int(row[0]) if row else 0) + 1
        if row is None:
            self.conn.execute(text("INSERT INTO emulator_state (id, revision) VALUES (1, :r)"), {"r": revision})
        else:
            self.conn.execute(text("UPDATE emulator_state SET revision = :r WHERE id = 1"), {"r": revision})
        rows = [{"id": oid, "type": type_, "rev": revision, "archived": self._objects[oid].get("archived_at") is not None,
                 "body": canonical.dumps(self._objects[oid])} for oid, type_ in self._dirty.items()]
        self.conn.execute(text(_UPSERT), rows)
        written = {oid: revision for oid in self._dirty}
        self._dirty = {}
        return written


def revisions(conn: Connection) -> dict[str, int]:
    """id -> revision of every emulator object (what a refresh compares)."""
    return {row[0]: int(row[1]) for row in conn.execute(text("SELECT id, revision FROM emulator_objects"))}
