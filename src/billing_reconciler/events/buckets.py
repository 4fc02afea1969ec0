"""Aggregated usage on its way into a `UsageTable`: per metric, (customer ref, window, dims) -> value.

The rows of DuckDB's GROUP BYs add here; rows that land on the same key (numeric group values
DuckDB writes differently, 3.0 and 3) combine by the metric's rule. LATEST is held as (micros, transaction id, value) so that
ties between events with the same timestamp go to the greater transaction id whichever source
they came from; the table gets (micros, value).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..rating.metrics import MetricQuery, UsageTable, combine


class Buckets:
    def __init__(self, queries: Sequence[MetricQuery]):
        self.queries = {q.metric: q for q in queries}
        self.rows: dict[str, dict[tuple, Any]] = {q.metric: {} for q in queries}

    def add(self, metric: str, key: tuple, value: Any) -> None:
        rows = self.rows[metric]
        old = rows.get(key)
        if old is None:
            rows[key] = value
        elif self.queries[metric].aggregation == "LATEST":
            if value is not None and value[:2] > old[:2]:
                rows[key] = value
        else:
            rows[key] = combine(self.queries[metric].aggregation, old, value)

    def table(self, cuts: list[datetime]) -> UsageTable:
        table = UsageTable(cuts=list(cuts), queries=dict(self.queries))
        for metric, rows in self.rows.items():
            agg = self.queries[metric].aggregation
            for (ref, window, dims), value in rows.items():
                table.add(metric, ref, window, dims, _final(agg, value))
        return table


def _final(aggregation: str, value: Any) -> Any:
    if value is None or aggregation == "UNIQUE":
        return value
    if aggregation == "LATEST":
        return (value[0], Decimal(value[2]))
    return Decimal(value)
