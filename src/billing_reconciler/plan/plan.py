"""The Plan: an immutable, ordered list of Operations plus what the reviewer must know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..manifests.errors import Problem
from .operations import Action, Change, Operation

FORMAT_VERSION = "1.0"


@dataclass(frozen=True)
class Drift:
    """An object whose stored body no longer matches what was last applied."""

    address: str
    changes: tuple[Change, ...]

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class Plan:
    lineage: str | None
    serial: int
    manifests_digest: str
    operations: tuple[Operation, ...]
    drift: tuple[Drift, ...] = ()
    unmanaged: tuple[str, ...] = ()
    errors: tuple[Problem, ...] = ()
    targets: tuple[str, ...] = ()
    prune: bool = False
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. invoice impact of --usage
    # Store-only changes, made by apply without an API call: renames (plan.moves.Move) and
    # lifecycle records (plan.lifecycle.Recorded: protect, ignored paths, a re-digest).
    moves: tuple[Any, ...] = ()
    records: tuple[Any, ...] = ()

    @property
    def errored(self) -> bool:
        return bool(self.errors)

    @property
    def has_changes(self) -> bool:
        return bool(self.operations or self.moves or self.records)

    @property
    def applyable(self) -> bool:
        return self.has_changes and not self.errored

    def summary(self) -> dict[str, int]:
        """Objects per action; a replaced object counts once, not per API call."""
        seen: dict[str, Action] = {}
        for op in self.operations:
            current = seen.get(op.address)
            # An object that is created in this plan counts as a create even if edited after.
            if current is None or op.action in (Action.REPLACE, Action.ARCHIVE) or (
                    current == Action.UPDATE and op.action == Action.CREATE):
                seen[op.address] = op.action
        counts = {a.value: 0 for a in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.ARCHIVE)}
        for action in seen.values():
            counts[action.value] += 1
        return counts

    def by_address(self) -> dict[str, list[Operation]]:
        out: dict[str, list[Operation]] = {}
        for op in self.operations:
            out.setdefault(op.address, []).append(op)
        return out
