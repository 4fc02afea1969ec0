"""Renames (`metadata.moved_from`): the stored object moves to its new key, with no API call.

As Terraform's `moved` blocks: the object keeps its id, a former key the store does not know is
ignored (so old entries can stay), and a rename combined with a field change is one update at
the new key. The planner calls `find_moves` and `apply_moves` on its snapshot before diffing, so
everything after it (diff, drift, item ids) sees the object under its new key, and objects that
refer to it (a contract's customer, a rate's product) under the new key too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..manifests.document import Manifest
from ..manifests.errors import PendingProblem
from ..manifests.references import REFERENCES, walk
from ..store.store import Snapshot


@dataclass(frozen=True)
class Move:
    kind: str
    old: str
    new: str

    @property
    def from_address(self) -> str:
        return f"{self.kind}/{self.old}"

    @property
    def to_address(self) -> str:
        return f"{self.kind}/{self.new}"

    def to_json(self) -> dict[str, Any]:
        return {"from": self.from_address, "to": self.to_address}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Move:
        kind, _, old = data["from"].partition("/")
        to_kind, _, new = data["to"].partition("/")
        if to_kind != kind or not old or not new:
            raise ValueError(f"a move stays within its kind: {data['from']} -> {data['to']}")
        return cls(kind, old, new)


def find_moves(desired: dict[str, Manifest], snapshot: Snapshot) -> tuple[list[Move], list[PendingProblem]]:
    """The renames the manifests ask for that the store can make, and the refused ones."""
    problems: list[PendingProblem] = []
    claimed: dict[str, tuple[Manifest, int]] = {}
    stored = {**snapshot.gone, **snapshot.objects}
    moves: list[Move] = []
    for address in sorted(desired):
        manifest = desired[address]
        found: list[str] = []
        for index, old in enumerate(manifest.moved_from):
            old_address = f"{manifest.kind}/{old}"
            path = ("metadata", "moved_from", index)
            if old_address in desired:
                problems.append(manifest.problem(path, f"{old_address} is still in the manifests; a rename moves it "
                                                       f"here: delete its manifest, or drop '{old}' from moved_from"))
            elif old_address in claimed:
                problems.append(manifest.problem(path, f"{old_address} is also named in moved_from of "
                                                       f"{claimed[old_address][0].address}; an object moves to one key"))
            else:
                claimed[old_address] = (manifest, index)
                if old_address in stored:
                    found.append(old)
        if not found:
            continue  # no former key in the store: nothing to move (stale entries are ignored)
        if address in stored:
            problems.append(manifest.problem(("metadata", "moved_from"),
                            f"both {address} and {manifest.kind}/{found[0]} are in the store; a rename needs the new "
                            f"key free: drop '{found[0]}' from moved_from, or archive one of them (--prune)"))
        elif len(found) > 1:
            problems.append(manifest.problem(("metadata", "moved_from"),
                            f"{len(found)} of its former keys are in the store ({', '.join(found)}); only one can "
                            "move here: list the one that is this object"))
        else:
            moves.append(Move(manifest.kind, found[0], manifest.name))
    return moves, problems


def apply_moves(snapshot: Snapshot, moves: list[Move]) -> set[str]:
    """Re-key the moved objects in the snapshot, and the references to them in other objects'
    specs (the stored bodies name the old keys until they are read again). Returns the addresses
    of those referring objects."""
    if not moves:
        return set()
    renames = {(m.kind, m.old): m.new for m in moves}
    for move in moves:
        for table in (snapshot.objects, snapshot.gone):
            obj = table.pop(move.from_address, None)
            if obj is not None:
                obj.key = move.new
                table[move.to_address] = obj
    referring = set()
    for address, obj in snapshot.objects.items():
        if obj.kind not in REFERENCES:
            continue
        renamed = rename_references(obj.kind, obj.spec, renames)
        if renamed is not obj.spec:
            _ = obj.body_digest  # drift stays measured on the body as stored, with its old keys
            obj._spec = renamed
            referring.add(address)
    return referring


def rename_references(kind: str, spec: dict[str, Any], renames: dict[tuple[str, str], str]) -> dict[str, Any]:
    """`spec` with every reference to a renamed object under its new key (the same dict if none)."""
    out = spec
    for pattern, target in REFERENCES.get(kind, []):
        for path, value in list(walk(out, pattern)):
            new = renames.get((target, value)) if isinstance(value, str) else None
            if new is None:
                continue
            if out is spec:
                out = copy.deepcopy(spec)
            node: Any = out
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = new
    return out
