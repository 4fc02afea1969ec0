"""CSV ingest through DuckDB's CSV reader: the fast path for a clean file (as JSON Lines has).

The header is read here (Python's csv module, a UTF-8 byte order mark skipped) and names the
columns for DuckDB's `read_csv` (no sniffing: every column VARCHAR, strict quoting, so a row with
more or fewer values than the header is an error, not a guess). Each row gets a verdict in SQL
that accepts only rows the line parser (`parse.parse_csv`) would accept with the same meaning;
the properties are the `properties` column's JSON object with every other non-empty column laid
over it as a string, as the line parser builds them. If DuckDB refuses the file (bytes that are
not UTF-8, a ragged row, a stray quote) or any row is doubtful, `stage_csv` says so and the caller
takes the line path, which names each bad line and keeps the good ones.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable

import duckdb

from ..bounds import LAST_YEAR
from .parse import MAX_DEPTH, REQUIRED

SPECIAL = ("properties",)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def header(path: str | os.PathLike[str]) -> list[str] | None:
    """The header row, or None when it is not one the fast path takes (unreadable, missing a
    required column, a name twice or empty)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            names = next(csv.reader(stream), None)
    except (UnicodeDecodeError, csv.Error, OSError):
        return None
    if not names or any(f not in names for f in REQUIRED) or len(set(names)) != len(names) or "" in names:
        return None
    return names


def _stage_sql(names: list[str]) -> str:
    from .ingest import _DOUBTFUL_NUMBER, _TS

    columns = "{" + ", ".join(f"{_text(n)}: 'VARCHAR'" for n in names) + "}"
    props = "'{}'"
    checks = []
    if "properties" in names:
        p = _ident("properties")
        props = f"coalesce({p}, '{{}}')"
        checks.append(f"({p} IS NULL OR (NOT contains({p}, '\\') AND starts_with({p}, '{{') AND json_valid({p}) "
                      f"AND json_type({p}::JSON) = 'OBJECT' "
                      f"AND NOT coalesce(regexp_matches({p}, '{_DOUBTFUL_NUMBER}'), false) "
                      f"AND strlen({p}) - strlen(replace(replace({p}, '[', ''), '{{', '')) <= {MAX_DEPTH}))")
    for n in names:
        if n not in (*REQUIRED, *SPECIAL):
            props = f"json_merge_patch({props}, CASE WHEN {_ident(n)} IS NULL THEN '{{}}' ELSE json_object({_text(n)}, {_ident(n)}) END)"
    for n in names:
        # Line numbers stay those of the file: a value spanning lines goes to the line path.
        checks.append(f"NOT coalesce(regexp_matches({_ident(n)}, '[\\r\\n]'), false)")
    for f in REQUIRED:
        checks.append(f"coalesce(regexp_matches({_ident(f)}, '[[:alnum:]]') AND NOT regexp_matches({_ident(f)}, "
                      f"'^\\s|\\s$'), false)")
    ts = _ident("timestamp")
    checks += [f"regexp_full_match('\"' || {ts} || '\"', '{_TS}')",
               f"try_cast({ts} AS TIMESTAMPTZ) < TIMESTAMPTZ '{LAST_YEAR}-01-01 00:00:00+00'"]
    verdict = " AND ".join(checks)
    return f"""
    CREATE OR REPLACE TEMP TABLE staged AS
    SELECT {_ident("transaction_id")} AS transaction_id, {_ident("customer_id")} AS customer_ref,
           {_ident("event_type")} AS event_type, try_cast({ts} AS TIMESTAMPTZ) AS "timestamp",
           (CASE WHEN coalesce({verdict}, false) THEN {props} ELSE '{{}}' END)::JSON AS properties,
           coalesce({verdict}, false) AS ok
    FROM read_csv(?, header = true, auto_detect = false, columns = {columns}, delim = ',', quote = '"',
                  escape = '"', strict_mode = true, null_padding = false)
    """


def stage_csv(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str],
              progress: Callable[[float], None] | None = None) -> bool:
    """Stage a clean CSV file's rows in `staged` (True); False (nothing staged) when the file needs
    the line path."""
    from .ingest import _with_progress

    names = header(path)
    if names is None:
        return False
    try:
        _with_progress(con, progress, _stage_sql(names), [str(path)])
        (doubtful,) = con.execute("SELECT count(*) FILTER (NOT ok) FROM staged").fetchone()
    except duckdb.Error:
        doubtful = 1
    if doubtful:
        con.execute("DROP TABLE IF EXISTS staged")
        return False
    return True
