"""The store's schema version: what this release writes, and what a store says it has.

Kept apart from the migrations so that reading it imports neither Alembic nor the ORM layer: every
plan checks it (`Store.snapshot`), and a no-op plan should not pay for either.

Alembic records a store's revision in `alembic_version`. Revision ids are `v<N>`, N the schema
number (`v4` the baseline, `v5` the emulator, ...), so a revision and the "schema vN" users see are
one name. Stores written before Alembic (schema v1 to v4) have no `alembic_version`, only the
`schema_migrations` log of the hand-rolled migrations; `init` upgrades them (store.migrations) and
keeps that log's newest number equal to the schema's, so a release from before Alembic, which reads
only the log, refuses a newer store instead of misreading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

LATEST_VERSION = 7
# The schema of the last release before Alembic: the first revision creates it.
BASELINE_VERSION = 4


def revision_id(version: int) -> str:
    return f"v{version}"


HEAD = revision_id(LATEST_VERSION)
BASELINE = revision_id(BASELINE_VERSION)
# Every revision this release has, oldest first (a test checks them against store/alembic/versions).
REVISIONS = tuple(revision_id(n) for n in range(BASELINE_VERSION, LATEST_VERSION + 1))

_REVISION_ID = re.compile(r"v(\d+)")

# The tables a store at HEAD has (a test checks them against tables.py): a store whose
# alembic_version says HEAD but lacks one of them is damaged, not new or current.
TABLES_AT_HEAD = frozenset({
    "alembic_version", "schema_migrations", "state", "objects", "sub_items", "edits", "applies", "emulator_objects",
    "emulator_state", "invoices",
})


@dataclass(frozen=True)
class Schema:
    """What a store says about its schema."""

    revisions: tuple[str, ...]  # the rows of alembic_version: () before Alembic
    legacy: int  # the newest version in schema_migrations (0: none, a new store)

    @property
    def known(self) -> bool:
        """This release knows the schema: a revision it has, or a version from before Alembic."""
        if self.revisions:
            return len(self.revisions) == 1 and self.revisions[0] in REVISIONS
        return self.legacy <= LATEST_VERSION

    @property
    def version(self) -> int:
        """The schema number (as shown to users); for a revision not in this release, the number in
        its id if it has one, else 0. Decide with `known`, never by comparing this number."""
        if not self.revisions:
            return self.legacy
        matches = (_REVISION_ID.fullmatch(r) for r in self.revisions)
        return max((int(m.group(1)) for m in matches if m), default=0)

    @property
    def current(self) -> bool:
        return self.revisions == (HEAD,)

    def refusal(self) -> str | None:
        """Why this release must neither read nor upgrade the store (a newer release wrote it), or None."""
        if self.known:
            return None
        if self.revisions:
            named = ", ".join(repr(r) for r in self.revisions)
            return (f"the store is at schema revision {named}, which this release does not know "
                    f"(its newest is {HEAD!r}): a newer billing-reconciler wrote it; "
                    "upgrade billing-reconciler to use it")
        return (f"the store has schema v{self.legacy}, newer than this release understands "
                f"(v{LATEST_VERSION}); upgrade billing-reconciler to use it")


def read_schema(conn: Connection) -> Schema:
    tables = inspect(conn)
    if tables.has_table("alembic_version"):
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        revisions = tuple(sorted(r[0] for r in rows))
        if revisions:
            return Schema(revisions, 0)
    if not tables.has_table("schema_migrations"):
        return Schema((), 0)
    row = conn.execute(text("SELECT MAX(version) FROM schema_migrations")).first()
    return Schema((), int(row[0] or 0))


def missing_tables(conn: Connection) -> list[str]:
    """The tables a store at HEAD must have that this one lacks, sorted."""
    return sorted(TABLES_AT_HEAD - set(inspect(conn).get_table_names()))


def current_version(conn: Connection) -> int:
    return read_schema(conn).version
