"""Event property shapes: the part of an event's properties the rollup groups by.

An event's properties split in two. Number-valued ones (ints and decimals, not booleans: what
`rating.metrics.number` reads) are *measures*: the rollup sums them, keeps their maximum and their
latest value. Everything else (strings, booleans, nulls, lists, objects) is kept verbatim. The
*shape* is the kept part plus the measure names, so filters (`exists`, `in`, `not in`), group
keys and UNIQUE keys on non-numeric properties are evaluated once per shape, with the reference
functions, instead of once per event.

A property with many distinct values (a request id, say) would make every event its own shape.
Once a property has had more than `VALUE_CAP` distinct values the catalog stops keeping it (it is
*excluded*): later events' shapes leave it out, and a metric that filters, groups or counts
UNIQUE on it is aggregated from the raw events instead (`events.rollup_read`). Combinations of
several moderately varied properties are caught by `SHAPE_CAP`: past it, and again after each
further tenth of it, the property with the most values is excluded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ..canonical import dumps, loads

VALUE_CAP = 1_000
SHAPE_CAP = 100_000

Measures = tuple[tuple[str, Any], ...]  # (name, int | Decimal), sorted by name


def split(properties: Mapping[str, Any], excluded: frozenset[str] | set[str] = frozenset()
          ) -> tuple[dict[str, Any], Measures]:
    """(kept properties, measures) of one event's properties."""
    kept: dict[str, Any] = {}
    measures = []
    for name, value in properties.items():
        kind = type(value)
        if kind is int or (kind is Decimal and not value.is_nan()):
            measures.append((name, value))
        elif kind is float and value == value:
            measures.append((name, Decimal(repr(value))))  # as written, like rating.metrics.number
        elif isinstance(value, int) and not isinstance(value, bool):
            measures.append((name, int(value)))
        elif name not in excluded:
            kept[name] = value  # NaN too (not JSON, so never summed): it would poison a sum
    measures.sort()
    return kept, tuple(measures)


def shape_text(kept: Mapping[str, Any], names: Iterable[str]) -> str:
    return dumps([dict(kept), sorted(names)])


def shape_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_shape(text: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    kept, names = loads(text)
    return kept, tuple(names)


class ShapeCatalog:
    """Shape texts of events, with a per-run cache and the cap on distinct shapes.

    `known` maps shape text -> id for shapes already stored; new shapes get their id when the
    rollup is written (`events.rollup`)."""

    def __init__(self, known: Mapping[str, int] | None = None, excluded: Iterable[str] = ()):
        self.known: dict[str, int] = dict(known or {})
        self.excluded: set[str] = set(excluded)
        self.pending: set[str] = set()  # shapes seen this run, not stored yet
        self._fast: dict[tuple, str] = {}
        self._values: dict[str, set[str]] = {}
        self._limit = max(SHAPE_CAP, len(self.known) + SHAPE_CAP // 10)
        for text in self.known:
            self._count_values(parse_shape(text)[0])

    def shape_of(self, properties: Mapping[str, Any]) -> tuple[str, Measures]:
        """(shape text, measures) of one event's properties."""
        # One pass builds the cache key of flat shapes (the common case: every kept value a
        # string, boolean or null); the JSON text is built only for shapes not seen yet.
        items = []
        measures = []
        flat = True
        excluded = self.excluded
        for name, value in properties.items():
            kind = type(value)
            if kind is int or (kind is Decimal and not value.is_nan()):
                measures.append((name, value))
            elif kind is str or kind is bool or value is None:
                if name not in excluded:
                    items.append((name, value))
            else:
                flat = False
                break
        if flat:
            items.sort()
            measures.sort()
            key = (tuple(items), tuple(n for n, _ in measures))
            text = self._fast.get(key)
            if text is not None:
                return text, tuple(measures)
        kept, found = split(properties, excluded)
        names = tuple(n for n, _ in found)
        text = shape_text(kept, names)
        if text not in self.known and text not in self.pending:
            if self._count_values(kept) or (len(self.known) + len(self.pending) >= self._limit
                                            and self._exclude_most_varied(kept)):
                return self.shape_of(properties)
            self.pending.add(text)
        if flat:
            self._fast[key] = text
        return text, found

    def stored(self, ids: Mapping[str, int]) -> None:
        """The rollup writer stored these shapes under these ids."""
        self.known.update(ids)
        self.pending.difference_update(ids)

    def _count_values(self, kept: Mapping[str, Any]) -> bool:
        """Count the values of a new shape; True if that excluded a property (too many values)."""
        excluded = False
        for name, value in kept.items():
            values = self._values.setdefault(name, set())
            if name in self.excluded:
                continue
            values.add(dumps(value))
            if len(values) > VALUE_CAP:
                excluded = self._exclude(name)
        return excluded

    def _exclude_most_varied(self, kept: Mapping[str, Any]) -> bool:
        """Stop keeping the property (of this event) with the most distinct values, if one has
        more than one; returns whether one was excluded."""
        candidates = [(len(self._values.get(n, ())), n) for n in kept if n not in self.excluded]
        if not candidates or max(candidates)[0] <= 1:
            return False
        self._limit = len(self.known) + len(self.pending) + SHAPE_CAP // 10
        return self._exclude(max(candidates)[1])

    def _exclude(self, name: str) -> bool:
        self.excluded.add(name)
        self._values[name] = set()  # no longer counted
        self._fast.clear()
        return True
