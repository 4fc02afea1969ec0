"""The store's schema version: what this release writes, and what a store says it has.

Kept apart from the migrations so that reading it does not import the ORM layer.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

LATEST_VERSION = 5


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_migrations"):
        return 0
    row = conn.execute(text("SELECT MAX(version) FROM schema_migrations")).first()
    return int(row[0] or 0)
