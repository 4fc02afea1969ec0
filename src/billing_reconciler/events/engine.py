"""Where usage events live: one DuckDB file, opened by one writer process at a time.

The configuration store (SQLite/PostgreSQL) keeps configuration only; events are columnar in
DuckDB, by default `.billing-reconciler/events.duckdb` beside a SQLite store. A PostgreSQL store
has no directory of its own: its team names a shared path with `--events-db PATH` (or
BILLING_RECONCILER_EVENTS_DB). DuckDB locks its file for one writing process; a second process
gets `EventsBusy` (a sentence naming the file and what to do), never DuckDB's lock error.
Memory is bounded by DuckDB's `memory_limit` (`--events-memory`, BILLING_RECONCILER_EVENTS_MEMORY,
default 2GB); past it, DuckDB spills to `<file>.tmp`.

Or `--events-db DIR`, a directory: the events are Parquet files there (see "A Parquet events
directory" below), what a team shares and Spark reads in place.

Table `usage_events`: typed columns plus the properties as JSON. `timestamp` is TIMESTAMPTZ (UTC
instants); `customer_ref` is what the event sent (an ingest alias, a customer key or a remote id),
resolved when rating so an alias added later attributes earlier usage. The properties the store's
billable metrics read also get typed columns of their own (`events.columns`), which rating reads
instead of parsing the JSON.
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

# Which older stores' usage_events were moved into these events (events.move).
MOVES = """
CREATE TABLE IF NOT EXISTS store_moves (
    store VARCHAR PRIMARY KEY,
    moved_at TIMESTAMPTZ NOT NULL,
    events INTEGER NOT NULL
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
    if not override:
        return default_events_path(store_url)
    text = os.fspath(override)
    if text.endswith(("/", os.sep)):  # a Parquet events directory (a Path would drop the slash)
        try:
            Path(text).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EventsError(f"cannot create the events directory {text}: {exc.strerror}") from None
    return Path(text)


def connect(path: str | os.PathLike[str], *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating when writing) the events file with the schema in place, or a Parquet events
    directory (`is_parquet_dir`) through an in-memory database whose `usage_events` reads it."""
    limit = memory_limit or os.environ.get("BILLING_RECONCILER_EVENTS_MEMORY") or DEFAULT_MEMORY
    if is_parquet_dir(path):
        return _connect_dir(Path(path), read_only, limit)
    path = Path(path)
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
    session(con)
    if not read_only or not path.exists():
        con.execute(SCHEMA)
    return con


def session(con: duckdb.DuckDBPyConnection) -> None:
    """Every events connection: UTC, and DuckDB never prints its own progress bar (a long back-fill or
    aggregation would draw it into our output; `ingest` shows its own from `query_progress`)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar_print = false")


def _lock_holder(message: str) -> str:
    import re

    m = re.search(r"PID (\d+)", message)
    return f" (process {m.group(1)})" if m else ""


# --- A Parquet events directory ----------------------------------------------------------------
# `--events-db DIR` naming a directory (one that exists, or a path ending in /) keeps the events as
# Parquet files there: what a team shares when its store is PostgreSQL, and what Spark reads in
# place. DuckDB queries them through a view in an in-memory database; ingest writes one new file
# per run (written under a temporary name, renamed into place: a killed ingest leaves no partial
# file behind, and re-running it stores each event once, deduped against the files already there).
# One writer at a time holds DIR/.lock (flock); readers take no lock.

PARQUET_GLOB = "*.parquet"
MOVES_FILE = "_store_moves.json"  # a leading _ : Spark's Parquet reader skips it


def is_parquet_dir(path: str | os.PathLike[str]) -> bool:
    text = os.fspath(path)
    return Path(text).is_dir() or text.endswith(("/", os.sep))


def events_dir(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The Parquet events directory this connection reads, or None for a DuckDB events file."""
    try:
        (value,) = con.execute("SELECT getvariable('billing_reconciler_events_dir')").fetchone()
    except duckdb.Error:
        return None
    return None if value is None else Path(value)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def refresh_view(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)point `usage_events` at the directory's files; an empty table while there are none."""
    directory = events_dir(con)
    (kind,) = con.execute("SELECT coalesce(max(table_type), '') FROM information_schema.tables "
                          "WHERE table_name = 'usage_events'").fetchone()
    if kind:
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} usage_events")
    if not any(directory.glob(PARQUET_GLOB)):
        con.execute(SCHEMA)
        return
    glob = _sql_text(str(directory / PARQUET_GLOB))
    con.execute(f'CREATE VIEW usage_events AS SELECT transaction_id, customer_ref, event_type, "timestamp", '
                f"CAST(properties AS JSON) AS properties FROM read_parquet({glob})")


def _connect_dir(path: Path, read_only: bool, limit: str) -> duckdb.DuckDBPyConnection:
    if not read_only:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EventsError(f"cannot create the events directory {path}: {exc.strerror}") from None
    elif not path.is_dir():
        path = None
    try:
        con = duckdb.connect(":memory:", config={"memory_limit": limit})
    except duckdb.Error as exc:
        raise EventsError(f"cannot open the events directory {path}: {exc}") from None
    session(con)
    if path is None:  # nothing ingested yet
        con.execute(SCHEMA)
        return con
    con.execute(f"SET VARIABLE billing_reconciler_events_dir = {_sql_text(str(path.resolve()))}")
    if not read_only:
        _lock(con, path)
    refresh_view(con)
    moves = path / MOVES_FILE
    if moves.exists():
        con.execute(MOVES)
        con.execute(f"INSERT INTO store_moves SELECT * FROM read_json({_sql_text(str(moves))}, "
                    "columns = {store: 'VARCHAR', moved_at: 'TIMESTAMPTZ', events: 'INTEGER'})")
    return con


_locks: dict[int, int] = {}


def _lock(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    import fcntl

    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        con.close()
        raise EventsBusy(f"the events directory {path} is in use by another billing-reconciler process: one "
                         "writer at a time; wait for it to finish and run this again") from None
    _locks[id(con)] = fd


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close an events connection (and release a Parquet directory's writer lock)."""
    fd = _locks.pop(id(con), None)
    con.close()
    if fd is not None:
        os.close(fd)
