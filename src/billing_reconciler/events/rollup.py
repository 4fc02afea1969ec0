"""The usage rollup: events pre-aggregated at ingest, exactly, so rating never scans events.

One row per (UTC day, customer reference as sent, event type, property shape) holds the event
count, the first and last timestamp, and per measure (numeric property, see `events.shapes`) its
exact sum, maximum, latest timestamp, value and transaction id, as text with numbers written
exactly (Decimal text, never float). Latest ties go to the greater transaction id, so the result
does not depend on ingest order.

Why this and not a faster scan: every way of aggregating 10 million events in SQLite at rating
time sorts them (GROUP BY), which alone costs more than the 10 s budget; a rollup row summarises
tens of events, and rating reads rows in proportion to customers x days x shapes.

Exactness: the customer reference is kept as sent (aliases still resolve at rating time, so an
alias added later attributes earlier usage); rating reads a day from the rollup only if no cut
point falls between the first and last event of any of its rows, else from the events
(`events.rollup_read`). Idempotence: only events the insert actually stored are rolled up, in the
same transaction. Rows are merged in Python (a SQLite function; on PostgreSQL under an advisory
lock) because neither database adds decimal text exactly.

`usage_rollup_state.max_event_id`: events up to this id are in the rollup. Events a program
without the rollup wrote after it are rolled up by the next ingest and read raw until then.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from ..money import normalize
from .shapes import Measures, ShapeCatalog, shape_digest

DAY = 86_400_000_000  # microseconds
CATCH_UP_CHUNK = 50_000
# PostgreSQL advisory lock serialising rollup writers ("billroll").
PG_LOCK_ID = 0x6269_6C6C_726F_6C6C

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


# --- measures -----------------------------------------------------------------------------------
# Per measure, in the order of the shape's (sorted) measure names: sum, max, latest timestamp,
# latest value, latest transaction id (JSON string), fields separated by US (0x1f), measures by
# RS (0x1e). JSON escapes control characters inside strings, so neither separator can occur in a
# field, and reading one sum is two splits and a Decimal, not a JSON parse.

_US, _RS = "\x1f", "\x1e"


def encode_measures(measures: Sequence[list]) -> str:
    return _RS.join(f"{total}{_US}{top}{_US}{ts}{_US}{latest}{_US}{_encode_str(tx)}"
                    for total, top, ts, tx, latest in measures)


def _number(text: str) -> int | Decimal:
    return int(text) if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()) else Decimal(text)


def _string(text: str) -> str:
    return text[1:-1] if "\\" not in text else json.loads(text)  # escapes are rare in ids


def measure(text: str, index: int, field: int) -> int | Decimal:
    """One numeric field of one measure: 0 sum, 1 max, 3 latest value."""
    return _number(text.split(_RS)[index].split(_US, field + 1)[field])


def latest(text: str, index: int) -> tuple[int, str, int | Decimal]:
    _total, _top, ts, value, tx = text.split(_RS)[index].split(_US)
    return int(ts), _string(tx), _number(value)


def merge_measures(a: str, b: str) -> str:
    """The SQLite function `rollup_merge(old, new)`: measures of two rows with the same key.
    Works on the text fields (once per event at ingest when rows already exist: kept cheap)."""
    if not a:
        return b
    if not b:
        return a
    out = []
    for part_a, part_b in zip(a.split(_RS), b.split(_RS)):
        total_a, top_a, ts_a, latest_a, tx_a = part_a.split(_US)
        total_b, top_b, ts_b, latest_b, tx_b = part_b.split(_US)
        if _number(top_b) > _number(top_a):
            top_a = top_b
        if int(ts_b) > int(ts_a) or (ts_b == ts_a and _string(tx_b) > _string(tx_a)):
            ts_a, latest_a, tx_a = ts_b, latest_b, tx_b
        out.append(f"{_number(total_a) + _number(total_b)}{_US}{top_a}{_US}{ts_a}{_US}{latest_a}{_US}{tx_a}")
    return _RS.join(out)


# --- accumulating a batch -----------------------------------------------------------------------

class RollupBatch:
    """Rollup deltas of some events, keyed (day, customer_ref, event_type, shape text)."""

    def __init__(self) -> None:
        self.cells: dict[tuple, list] = {}

    def add(self, customer_ref: str, event_type: str, ts: int, tx: str, shape: str, measures: Measures) -> None:
        key = (ts // DAY, customer_ref, event_type, shape)
        cell = self.cells.get(key)
        if cell is None:
            self.cells[key] = [1, ts, ts, [[v, v, ts, tx, v] for _name, v in measures]]
            return
        cell[0] += 1
        if ts < cell[1]:
            cell[1] = ts
        if ts > cell[2]:
            cell[2] = ts
        for m, (_name, v) in zip(cell[3], measures):  # a shape fixes its measure names
            m[0] += v
            if v > m[1]:
                m[1] = v
            if ts > m[2] or (ts == m[2] and tx > m[3]):
                m[2], m[3], m[4] = ts, tx, v

    def shapes(self) -> set[str]:
        return {key[3] for key in self.cells}

    def rows(self, shape_ids: Mapping[str, int]) -> list[tuple]:
        return [(day, ref, et, shape_ids[shape], c[0], c[1], c[2], encode_measures(c[3]))
                for (day, ref, et, shape), c in self.cells.items()]


# --- the stored state ---------------------------------------------------------------------------

@dataclass
class RollupState:
    max_event_id: int
    catalog: ShapeCatalog


def _sql(sql: str, pg: bool) -> str:
    return sql.replace("?", "%s") if pg else sql


def has_rollup(dbapi, pg: bool) -> bool:
    """Whether the store has the rollup tables (a store not yet upgraded by `init` has not)."""
    if pg:
        row = dbapi.execute("SELECT to_regclass('usage_rollup_state')").fetchone()
        return row[0] is not None
    row = dbapi.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_rollup_state'").fetchone()
    return row is not None


def read_state(dbapi, pg: bool, catalog: ShapeCatalog | None = None) -> RollupState:
    """The rollup's coverage and shapes; `catalog` (from an earlier batch) is refreshed, not reloaded."""
    row = dbapi.execute("SELECT max_event_id, excluded FROM usage_rollup_state WHERE id = 1").fetchone()
    max_id, excluded = (row[0], json.loads(row[1])) if row else (0, [])
    if catalog is None:
        known = {text: i for i, text in dbapi.execute("SELECT id, shape FROM usage_shapes").fetchall()}
        catalog = ShapeCatalog(known, excluded)
    else:
        catalog.excluded.update(excluded)
    return RollupState(max_id, catalog)


def save_state(dbapi, pg: bool, max_event_id: int, excluded: Iterable[str]) -> None:
    params = (max_event_id, json.dumps(sorted(excluded)))
    cur = dbapi.execute(_sql("UPDATE usage_rollup_state SET max_event_id = ?, excluded = ? WHERE id = 1", pg), params)
    if cur.rowcount == 0:
        dbapi.execute(_sql("INSERT INTO usage_rollup_state (id, max_event_id, excluded) VALUES (1, ?, ?)", pg), params)


def lock(dbapi, pg: bool) -> None:
    """PostgreSQL: one rollup writer at a time, until the transaction ends (SQLite: the write
    lock of BEGIN IMMEDIATE already does this)."""
    if pg:
        dbapi.execute("SELECT pg_advisory_xact_lock(%s)", (_signed(PG_LOCK_ID),))


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


# --- writing ------------------------------------------------------------------------------------

def store_shapes(dbapi, pg: bool, texts: Iterable[str]) -> dict[str, int]:
    """Ids of these shapes, inserting the ones not stored yet."""
    rows = [(shape_digest(t), t) for t in texts]
    if not rows:
        return {}
    cur = dbapi.cursor()
    cur.executemany(_sql("INSERT INTO usage_shapes (digest, shape) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING", pg),
                    rows)
    select = _sql("SELECT id FROM usage_shapes WHERE digest = ?", pg)
    return {text: dbapi.execute(select, (digest,)).fetchone()[0] for digest, text in rows}


_UPSERT_SQLITE = (
    "INSERT INTO usage_rollup (day, customer_ref, event_type, shape_id, events, min_ts, max_ts, measures) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, customer_ref, event_type, shape_id) DO UPDATE SET "
    "events = events + excluded.events, min_ts = min(min_ts, excluded.min_ts), "
    "max_ts = max(max_ts, excluded.max_ts), measures = rollup_merge(measures, excluded.measures)")

_PG_IN = ("CREATE TEMP TABLE IF NOT EXISTS usage_rollup_in (day integer, customer_ref text, event_type text, "
          "shape_id bigint, events bigint, min_ts bigint, max_ts bigint, measures text) ON COMMIT DELETE ROWS")
_COLS = "day, customer_ref, event_type, shape_id, events, min_ts, max_ts, measures"


def write(dbapi, pg: bool, batch: RollupBatch, catalog: ShapeCatalog) -> None:
    """Add a batch to the stored rollup, in the caller's transaction. The catalog learns the ids
    of new shapes: if the transaction rolls back, read the state afresh (`read_state`)."""
    if not batch.cells:
        return
    catalog.stored(store_shapes(dbapi, pg, [s for s in batch.shapes() if s not in catalog.known]))
    rows = batch.rows(catalog.known)
    if pg:
        _write_pg(dbapi, rows)
    else:
        dbapi.create_function("rollup_merge", 2, merge_measures, deterministic=True)
        dbapi.cursor().executemany(_UPSERT_SQLITE, rows)


def _write_pg(dbapi, rows: Sequence[tuple]) -> None:
    with dbapi.cursor() as cur:
        cur.execute(_PG_IN)
        cur.execute("DELETE FROM usage_rollup_in")
        with cur.copy(f"COPY usage_rollup_in ({_COLS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"SELECT r.day, r.customer_ref, r.event_type, r.shape_id, r.events, r.min_ts, r.max_ts, "
                    f"r.measures FROM usage_rollup r JOIN usage_rollup_in i "
                    f"USING (day, customer_ref, event_type, shape_id)")
        existing = {row[:4]: row[4:] for row in cur.fetchall()}
        if existing:
            merged = []
            for row in rows:
                old = existing.get(row[:4])
                if old is None:
                    merged.append(row)
                else:
                    merged.append((*row[:4], row[4] + old[0], min(row[5], old[1]), max(row[6], old[2]),
                                   merge_measures(old[3], row[7])))
            cur.execute("DELETE FROM usage_rollup_in")
            with cur.copy(f"COPY usage_rollup_in ({_COLS}) FROM STDIN") as copy:
                for row in merged:
                    copy.write_row(row)
        cur.execute(f"INSERT INTO usage_rollup ({_COLS}) SELECT {_COLS} FROM usage_rollup_in "
                    "ON CONFLICT (day, customer_ref, event_type, shape_id) DO UPDATE SET events = excluded.events, "
                    "min_ts = excluded.min_ts, max_ts = excluded.max_ts, measures = excluded.measures")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Rolling up creates many small dicts, lists and tuples that die by reference counting; the
    cyclic collector would re-scan every live one each few thousand allocations (a third of the
    time of a batch). Nothing here makes reference cycles."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def max_event_id(dbapi) -> int:
    return dbapi.execute("SELECT max(id) FROM usage_events").fetchone()[0] or 0


def roll_up_stored(dbapi, pg: bool, catalog: ShapeCatalog, after_id: int, upto_id: int) -> None:
    """Roll the stored events with after_id < id <= upto_id into the rollup (a store upgraded to
    the rollup, or events an older program wrote), a chunk at a time."""
    select = _sql("SELECT id, transaction_id, customer_ref, event_type, ts_epoch, properties FROM usage_events "
                  f"WHERE id > ? AND id <= ? ORDER BY id LIMIT {CATCH_UP_CHUNK}", pg)
    with paused_gc():
        _roll_up_stored(dbapi, pg, catalog, after_id, upto_id, select)


# canonical.loads, without building a JSONDecoder per call (a third of the time per event).
_decode = json.JSONDecoder(parse_float=lambda text: normalize(Decimal(text))).decode


def _roll_up_stored(dbapi, pg: bool, catalog: ShapeCatalog, after_id: int, upto_id: int, select: str) -> None:
    last = after_id
    while last < upto_id:
        rows = dbapi.execute(select, (last, upto_id)).fetchall()
        if not rows:
            break
        batch = RollupBatch()
        for _id, tx, ref, event_type, ts, properties in rows:
            shape, measures = catalog.shape_of(_decode(properties))
            batch.add(ref, event_type, ts, tx, shape, measures)
        write(dbapi, pg, batch, catalog)
        last = rows[-1][0]
