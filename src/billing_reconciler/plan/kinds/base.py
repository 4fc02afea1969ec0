"""Shared pieces of the per-kind planners: the registry and the operation builder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...canonical import dumps
from ...specform import comparable
from ...manifests.document import Manifest
from ...store.store import StoredObject
from ..context import PlanContext
from ..operations import PLACEHOLDER, Action, Change, ItemEffect, Operation, make_request

Create = Callable[[PlanContext, Manifest], list[Operation]]
Update = Callable[[PlanContext, Manifest, StoredObject, str], list[Operation]]
Archive = Callable[[PlanContext, StoredObject], list[Operation]]


@dataclass(frozen=True)
class KindPlanner:
    create: Create
    update: Update
    archive: Archive


PLANNERS: dict[str, KindPlanner] = {}


def register(kind: str, *, create: Create, update: Update, archive: Archive) -> None:
    PLANNERS[kind] = KindPlanner(create, update, archive)



def operation(op: str, address: str, action: Action, body: dict[str, Any], *,
              manifest: Manifest | None, reason: str, changes: Iterable[Change] = (),
              items: Iterable[ItemEffect] = ()) -> Operation:
    depends = sorted({m[0] for m in PLACEHOLDER.findall(dumps(body)) if m[0] != address})
    return Operation(
        op=op,
        address=address,
        action=action,
        request=make_request(op, body),
        changes=tuple(changes),
        depends_on=tuple(depends),
        reason=reason,
        spec_after=manifest.spec if manifest is not None else None,
        spec_digest=manifest.digest if manifest is not None else None,
        items=tuple(items),
    )


def changed(before: dict[str, Any], after: dict[str, Any], name: str) -> bool:
    return before.get(name) != after.get(name)


def same_value(name: str, before: Any, after: Any) -> bool:
    """The two values of a spec field mean the same (compared in the comparable form: a default the
    API fills in, such as a rate card's USD fiat credit type, equals leaving the field out)."""
    def form(value: Any) -> dict[str, Any]:
        return comparable({name: value}) if value is not None else {}
    return form(before) == form(after)


def immutable(ctx: PlanContext, manifest: Manifest, before: dict[str, Any], fields: Iterable[str],
              way_out: str) -> bool:
    """Refuse changes to fields the API cannot update; True when any was refused."""
    refused = False
    for name in fields:
        if not same_value(name, before.get(name), manifest.spec.get(name)):
            ctx.refuse(manifest, ("spec", name),
                       f"{name} cannot be changed after {manifest.address} is created (the billing API has "
                       f"no update for it); {way_out}")
            refused = True
    return refused
