"""The rating aggregation's SQL, written once and emitted for DuckDB and for Spark SQL.

One GROUP BY per billable metric over (customer_ref, time window, requested properties), with the
metric's event-type and property filters in the WHERE clause (semantics: `events.aggregate`). The
query's shape — the window CASE tree, the filters, the group keys, the aggregates — is built here
once; a `Dialect` supplies only the leaves that differ between the engines: literals, the epoch
micros of the timestamp, how a property's JSON text is extracted, how a JSON string is decoded,
structs.

Why a builder and not SQLGlot transpiling the DuckDB SQL: on these queries (sqlglot 30, DuckDB ->
Spark) the transpiled text kept `epoch_us` (no such Spark function) and DuckDB's `j[2:-2]` string
slicing, and turned `json_extract(properties, [paths])` into `GET_JSON_OBJECT(properties,
ARRAY(...))`, which Spark refuses. Worse, no transpiler can fix a difference in meaning: Spark's
`get_json_object` returns a JSON string's *contents* ("x" -> x), so a string property can no longer
be told from a number, which the metrics' filters and group values depend on. Spark 4's VARIANT
(`parse_json` + `variant_get` + `to_json`) gives the property's JSON text exactly as DuckDB's
`json_extract` does (a string keeps its quotes, null is 'null', a missing key is NULL), so the same
classification by first character runs on both.

Where the events file keeps a property in typed columns (`events.columns`: DuckDB files only), the
same predicates and values read those columns instead of the JSON; both forms mean the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..rating.metrics import MetricQuery
from .columns import DIGITS, VALUE
from .columns import names as column_names

QUOTE = '"'


class Dialect:
    name = ""
    timestamp = ""

    def literal(self, text: str) -> str:
        raise NotImplementedError

    def epoch_us(self, column: str) -> str:
        raise NotImplementedError

    def extract(self, names: Sequence[str], source: str, carry: Sequence[str] = ()) -> str:
        """SELECT transaction_id, customer_ref, t, the `carry` columns and the JSON text of each
        named property FROM source."""
        raise NotImplementedError

    def ref(self, index: int) -> str:
        """The JSON text of the index-th extracted property (0-based)."""
        raise NotImplementedError

    def starts_with(self, text: str, prefix: str) -> str:
        raise NotImplementedError

    def decoded(self, j: str) -> str:
        """A JSON string's contents (j is known to start with a quote)."""
        raise NotImplementedError

    def as_text(self, j: str) -> str:
        return j

    def struct(self, fields: Sequence[tuple[str, str]]) -> str:
        raise NotImplementedError

    def in_list(self, values) -> str:
        return "(" + ", ".join(self.literal(v) for v in sorted(values)) + ")"


class DuckDB(Dialect):
    name = "duckdb"
    timestamp = '"timestamp"'

    def literal(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def epoch_us(self, column: str) -> str:
        return f"epoch_us({column})"

    def extract(self, names: Sequence[str], source: str, carry: Sequence[str] = ()) -> str:
        # One json_extract with a list of paths: one parse of the properties per event (a
        # json_type + json_extract_string per use cost 3x).
        paths = "[" + ", ".join(self.literal('$."' + n.replace("\\", "\\\\").replace('"', '\\"') + '"')
                                for n in names) + "]"
        extract = f", json_extract(properties, {paths}) AS j" if names else ""
        return f"SELECT transaction_id, customer_ref, t{''.join(', ' + c for c in carry)}{extract} FROM {source}"

    def ref(self, index: int) -> str:
        return f"j[{index + 1}]"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"starts_with({text}, {self.literal(prefix)})"

    def decoded(self, j: str) -> str:
        return f"(CASE WHEN contains({j}, '\\') THEN {j} ->> '$' ELSE {j}[2:-2] END)"

    def as_text(self, j: str) -> str:
        return f"{j}::VARCHAR"

    def struct(self, fields: Sequence[tuple[str, str]]) -> str:
        return "struct_pack(" + ", ".join(f"{k} := {v}" for k, v in fields) + ")"


class Spark(Dialect):
    """Spark SQL (4.0 or later: VARIANT). String literals take backslash escapes there."""

    name = "spark"
    timestamp = "`timestamp`"

    def literal(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def epoch_us(self, column: str) -> str:
        return f"unix_micros({column})"

    def _path(self, name: str) -> str:
        if '"' not in name:
            return self.literal(f'$["{name}"]')
        if "'" not in name:
            return self.literal(f"$['{name}']")
        raise ValueError(f"Spark cannot address the property name {name!r} (it holds both quote marks)")

    def extract(self, names: Sequence[str], source: str, carry: Sequence[str] = ()) -> str:
        cols = "".join(f", to_json(variant_get(pv, {self._path(n)})) AS j{i + 1}" for i, n in enumerate(names))
        kept = "".join(", " + c for c in carry)
        parsed = f"(SELECT transaction_id, customer_ref, t{kept}, parse_json(properties) AS pv FROM {source})" \
            if names else source
        return f"SELECT transaction_id, customer_ref, t{kept}{cols} FROM {parsed}"

    def ref(self, index: int) -> str:
        return f"j{index + 1}"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"startswith({text}, {self.literal(prefix)})"

    def decoded(self, j: str) -> str:
        return (f"(CASE WHEN contains({j}, {self.literal(chr(92))}) THEN variant_get(parse_json({j}), '$', 'string') "
                f"ELSE substring({j}, 2, length({j}) - 2) END)")

    def struct(self, fields: Sequence[tuple[str, str]]) -> str:
        return "named_struct(" + ", ".join(f"{self.literal(k)}, {v}" for k, v in fields) + ")"


DUCKDB = DuckDB()
SPARK = Spark()


def _window_expr(cuts: Sequence[int], lo: int, hi: int) -> str:
    """The window of an event: a balanced CASE tree over the cut points (log2(cuts) comparisons)."""
    if hi - lo <= 1:
        return str(lo)
    mid = (lo + hi) // 2
    return f"CASE WHEN t < {cuts[mid]} THEN {_window_expr(cuts, lo, mid)} ELSE {_window_expr(cuts, mid, hi)} END"


class _Sql:
    """One metric's query. The properties it reads are extracted once per event as JSON texts and
    classified by their first character: `"` a string, a digit or `-` a number (ingest admits no
    NaN or Infinity), `null` or missing absent, else a boolean (or an object or array). A property
    the events keep in columns (`columns`: key -> N) is read from them instead."""

    def __init__(self, dialect: Dialect, columns: Mapping[str, int] | None = None) -> None:
        self.d = dialect
        self.names: list[str] = []
        self.columns = dict(columns or {})
        self.carried: list[str] = []

    def j(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return self.d.ref(self.names.index(name))

    def col(self, name: str) -> tuple[str, str, str] | None:
        """The (string, number, other) columns of a property kept in columns, else None."""
        if name not in self.columns:
            return None
        cols = column_names(self.columns[name])
        for c in cols:
            if c not in self.carried:
                self.carried.append(c)
        return cols

    def present(self, name: str) -> str:
        if c := self.col(name):
            return f"({c[0]} IS NOT NULL OR {c[1]} IS NOT NULL OR {c[2]} IS NOT NULL)"
        return f"coalesce({self.j(name)} <> 'null', false)"

    def is_string(self, name: str) -> str:
        if c := self.col(name):
            return f"({c[0]} IS NOT NULL)"
        return f"coalesce({self.d.starts_with(self.j(name), QUOTE)}, false)"

    def is_number(self, name: str) -> str:
        if c := self.col(name):
            return f"({c[1]} IS NOT NULL)"
        return f"coalesce(left({self.j(name)}, 1) IN {DIGITS}, false)"

    def string(self, name: str) -> str:
        if c := self.col(name):
            return c[0]
        return self.d.decoded(self.j(name))

    def text(self, name: str) -> str:
        """The value as text (a group key): strings decoded, numbers and booleans as written (a
        number read from its column has no text: its group goes by its decimal value alone)."""
        if c := self.col(name):
            return f"coalesce({c[0]}, {c[2]})"
        j = self.j(name)
        return (f"(CASE WHEN {j} IS NULL OR {j} = 'null' THEN NULL WHEN {self.is_string(name)} THEN {self.string(name)} "
                f"ELSE {self.d.as_text(j)} END)")

    def number(self, name: str) -> str:
        if c := self.col(name):
            return c[1]
        return f"(CASE WHEN {self.is_number(name)} THEN CAST({self.d.as_text(self.j(name))} AS {VALUE}) END)"

    def group_value(self, name: str, alias: str) -> list[str]:
        """Two columns: the text, and the decimal value when the property is a number."""
        return [f"{self.text(name)} AS {alias}", f"{self.number(name)} AS {alias}n"]


def build_query(q: MetricQuery, cuts: Sequence[int], dialect: Dialect = DUCKDB, table: str = "usage_events",
                columns: Mapping[str, int] | None = None) -> str:
    """The GROUP BY for one metric; `cuts` are epoch microseconds; `columns` the properties the
    table keeps in columns (`events.columns.known`). Result columns: customer_ref, w (window
    index), per dim its text and decimal value, then the aggregate (UNIQUE: text and decimal
    value; LATEST: a struct t, tx, v)."""
    d = dialect
    s = _Sql(d, columns)
    inner_where = [f"t >= {int(cuts[0])}", f"t < {int(cuts[-1])}"]
    if q.event_types_in is not None:
        inner_where.append(f"event_type IN {d.in_list(q.event_types_in)}")
    if q.event_types_not_in is not None:
        inner_where.append(f"event_type NOT IN {d.in_list(q.event_types_not_in)}")
    where = []
    for f in q.property_filters:
        if f.exists is True:
            where.append(s.present(f.name))
        elif f.exists is False:
            where.append(f"NOT {s.present(f.name)}")
        if f.in_values is not None:
            where.append(f"({s.is_string(f.name)} AND {s.string(f.name)} IN {d.in_list(f.in_values)})")
        if f.not_in_values is not None:
            where.append(f"NOT ({s.is_string(f.name)} AND {s.string(f.name)} IN {d.in_list(f.not_in_values)})")
    select = ["customer_ref", f"{_window_expr(cuts, 0, len(cuts) - 1)} AS w"]
    groups = ["customer_ref", "w"]
    for i, dim in enumerate(q.dims):
        select += s.group_value(dim, f"d{i}")
        groups += [f"d{i}", f"d{i}n"]
    agg = q.aggregation
    if agg == "COUNT":
        select.append("count(*)")
    elif agg == "SUM":
        select.append(f"sum({s.number(q.key)})")
    elif agg == "MAX":
        select.append(f"max({s.number(q.key)})")
    elif agg == "UNIQUE":
        select += s.group_value(q.key, "u")
        groups += ["u", "un"]
        where.append(s.present(q.key))
    elif agg == "LATEST":
        where.append(s.is_number(q.key))
        select.append(f"max({d.struct([('t', 't'), ('tx', 'transaction_id'), ('v', s.number(q.key))])})")
    else:
        raise ValueError(f"unsupported aggregation {agg}")
    carried = "".join(", " + c for c in s.carried)
    events = (f"(SELECT transaction_id, customer_ref, event_type, {d.epoch_us(d.timestamp)} AS t{carried}, properties "
              f"FROM {table})")
    source = f"({d.extract(s.names, f'{events} WHERE ' + ' AND '.join(inner_where), s.carried)})"
    return (f"SELECT {', '.join(select)} FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} "
            f"GROUP BY {', '.join(groups)}")
