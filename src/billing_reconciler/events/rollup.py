"""Retired: usage is aggregated by DuckDB over the events file (`events.aggregate`), not rolled up.

What is left is the surface the pre-Alembic upgrade step v4 (`store/migrations.py`) still calls
on stores from before it: those calls now record nothing, so the step creates the (empty, unread)
rollup tables and moves on. Delete this module with the Alembic revision that drops the old
event tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Catalog:
    excluded: set[str] = field(default_factory=set)


@dataclass
class _State:
    max_event_id: int = 0
    catalog: _Catalog = field(default_factory=_Catalog)


def read_state(dbapi, pg: bool, catalog=None) -> _State:  # noqa: ARG001
    return _State()


def max_event_id(dbapi) -> int:  # noqa: ARG001
    return 0


def roll_up_stored(dbapi, pg: bool, catalog, after: int, top: int) -> None:  # noqa: ARG001
    return None


def save_state(dbapi, pg: bool, max_event_id: int, excluded) -> None:  # noqa: ARG001
    return None

