"""Where usage events live: one DuckDB file, opened by one writer process at a time.

The configuration store (SQLite/PostgreSQL) keeps configuration only; events are columnar in
DuckDB, by default `.billing-reconciler/events.duckdb` beside a SQLite store. A PostgreSQL store
has no directory of its own: its team names a shared path with `--events-db PATH` (or
BILLING_RECONCILER_EVENTS_DB). DuckDB locks its file for one writing process; a second process
gets `EventsBusy` (a sentence naming the file and what to do), never DuckDB's lock error.
Memory is bounded by DuckDB's `memory_limit` (`--events-memory`, BILLING_RECONCILER_EVENTS_MEMORY,
default 2GB); past it, DuckDB spills to `<file>.tmp`.

Table `usage_events`: typed columns plus the properties as JSON. `timestamp` is TIMESTAMPTZ (UTC
instants); `customer_ref` is what the event sent (an ingest alias, a customer key or a remote id),
resolved when rating so an alias added later attributes earlier usage.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

DEFAULT_MEMORY = "2GB"
EVENTS_FILE = "events.duckdb"

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_events (
    transaction_id VARCHAR NOT NULL,
    customer_ref VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL,
    properties JSON
)
"""


class EventsError(Exception):
    """A problem with the events file a person can act on; the CLI prints it without a traceback."""


class EventsBusy(EventsError):
    pass


def default_events_path(store_url: str) -> Path:
    """`events.duckdb` in the directory of a SQLite store file; PostgreSQL stores must name one."""
    from sqlalchemy.engine import make_url

    url = make_url(store_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / EVENTS_FILE
    raise EventsError("a PostgreSQL store keeps no files: name the events database with --events-db PATH "
                      "(or BILLING_RECONCILER_EVENTS_DB), a path every machine that ingests or rates can reach")


def events_path(store_url: str, override: str | os.PathLike[str] | None = None) -> Path:
    override = override or os.environ.get("BILLING_RECONCILER_EVENTS_DB") or None
    return Path(override) if override else default_events_path(store_url)


def connect(path: str | os.PathLike[str], *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating when writing) the events file with the schema in place."""
    path = Path(path)
    limit = memory_limit or os.environ.get("BILLING_RECONCILER_EVENTS_MEMORY") or DEFAULT_MEMORY
    if read_only and not path.exists():
        # Nothing ingested yet: an empty in-memory database answers every query with no usage.
        con = duckdb.connect(":memory:", config={"memory_limit": limit})
    else:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": limit})
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                holder = _lock_holder(str(exc))
                raise EventsBusy(f"the events database {path} is in use by another billing-reconciler process"
                                 f"{holder}: DuckDB allows one writer at a time; wait for it to finish and "
                                 "run this again") from None
            raise EventsError(f"cannot open the events database {path}: {exc}") from None
        except duckdb.InvalidInputException as exc:
            raise EventsError(f"cannot open the events database {path}: {exc}") from None
        except duckdb.Error as exc:  # e.g. memory_limit text DuckDB cannot read
            raise EventsError(f"cannot open the events database {path}: {exc}") from None
    con.execute("SET TimeZone = 'UTC'")
    if not read_only or not path.exists():
        con.execute(SCHEMA)
    return con


def _lock_holder(message: str) -> str:
    import re

    m = re.search(r"PID (\d+)", message)
    return f" (process {m.group(1)})" if m else ""
