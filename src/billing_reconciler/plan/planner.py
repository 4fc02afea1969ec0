"""Build a Plan: compare manifests (desired) with the store (actual), kind by kind.

Digests are compared first; only objects whose digest differs are diffed field by field.
Operations come out in dependency order (metric -> product -> rate card -> customer -> contract),
then by address, so the same input always gives the byte-identical plan. Archives (prune) come
last, in reverse dependency order.
"""

from __future__ import annotations

from ..manifests.document import Manifest
from ..manifests.loader import locate_all
from ..store.store import Snapshot
from .context import PlanContext
from .credit_types import check_credit_types
from .diff import field_changes
from .kinds import PLANNERS
from .lifecycle import as_planned, desired_digest, protected_archive, record_for
from .moves import apply_moves, find_moves
from .kinds.customers import LATE_OPS
from .operations import Change, Operation
from .plan import Drift, Plan
from .transitions import ended_by_transitions

# Dependency order of the kinds (manifests.model.KIND_ORDER, repeated here so that planning
# does not import the pydantic models: a no-op plan never validates anything).
KIND_ORDER: tuple[str, ...] = ("BillableMetric", "Product", "RateCard", "Customer", "Contract")


class UnknownAddress(ValueError):
    """A --target or --replace address that names no object in the manifests or the store."""


def _check_addresses(option: str, addresses: tuple[str, ...], known: set[str]) -> None:
    import difflib

    for address in addresses:
        if address not in known:
            close = difflib.get_close_matches(address, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "addresses are Kind/key, e.g. Contract/acme-2025"
            raise UnknownAddress(f"{option} {address}: no such object in the manifests or the store; {hint}")


def build_plan(manifests: list[Manifest], snapshot: Snapshot, *, manifests_digest: str = "",
               targets: tuple[str, ...] = (), prune: bool = False, replace: tuple[str, ...] = ()) -> Plan:
    manifests, transition_reasons = ended_by_transitions(manifests)
    desired = {m.address: m for m in manifests}
    _check_addresses("--target", targets, set(desired) | set(snapshot.objects))
    _check_addresses("--replace", replace, set(desired) | set(snapshot.objects))
    # Renames first: everything below sees a moved object (and references to it) at its new key.
    moves, move_problems = find_moves(desired, snapshot)
    moves.sort(key=lambda m: (KIND_ORDER.index(m.kind), m.to_address))  # dependency order, as operations
    referring = apply_moves(snapshot, moves)
    ctx = PlanContext(snapshot=snapshot, desired=desired)
    ctx.refusals += move_problems
    digests = {address: desired_digest(m) for address, m in desired.items()}
    records = []
    ctx.creating = {a for a in desired if a not in snapshot.objects} | set(replace)
    operations: list[Operation] = []
    # Objects the backend no longer holds (archived behind the tool's back): made again if wanted.
    drift: list[Drift] = [Drift(address, (Change("", "exists", "archived outside the manifests"),))
                          for address in sorted(snapshot.gone)]
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    refused = {a for a in replace if a in desired and _replacing_a_metric_alone(ctx, desired[a], desired, replace)}

    # The sub-items of every object that will be compared field by field, in one read.
    snapshot.load_items([actual for address, actual in snapshot.objects.items() if address in desired and (
        digests[address] != actual.applied_digest or actual.drifted)])
    # Within a kind, a composite product comes after the products it is made of (created first).
    # Only products are looked into: reading every spec would parse all of them on a no-op plan.
    def order(address: str) -> tuple:
        m = desired[address]
        composite = m.kind == "Product" and bool(m.spec.get("composite_products"))
        return rank[m.kind], composite, address

    for address in sorted(desired, key=order):
        written = desired[address]
        planner = PLANNERS[written.kind]
        actual = snapshot.objects.get(address)
        digest = digests[address]
        record = record_for(written, actual, digest, address in referring)
        if record is not None:
            records.append(record)
        if actual is None:
            planned = as_planned(written, None, digest)
            check_credit_types(ctx, planned)
            operations += planner.create(ctx, planned)
            continue
        manifest = as_planned(written, actual, digest)
        drifted = actual.drifted
        if drifted:
            drift.append(Drift(address, tuple(field_changes(actual.spec, manifest.spec))))
        if digest == actual.applied_digest and not drifted:
            continue
        check_credit_types(ctx, manifest)
        if address in replace:
            if address in refused:
                continue
            protection = protected_archive(written, actual, "--replace (archive, then create again)",
                                           f"plan with --replace {address}")
            if protection is not None:
                ctx.refusals.append(protection)
                continue
            operations += [_as_replace(op) for op in planner.archive(ctx, actual)]
            operations += [_as_replace(op) for op in planner.create(ctx, as_planned(written, None, digest))]
            continue
        reason = ("drifted: changed outside the manifests" if drifted
                  else transition_reasons.get(address, "changed in manifests"))
        ops = planner.update(ctx, manifest, actual, reason)
        operations += [_mark_drift(op) for op in ops] if drifted else ops

    # Customer-level commits and credits may name contracts: they follow every create and update.
    operations = [o for o in operations if o.op not in LATE_OPS] + [o for o in operations if o.op in LATE_OPS]

    unmanaged = sorted(a for a in snapshot.objects if a not in desired and not snapshot.objects[a].archived)
    if prune:
        for address in sorted(unmanaged, key=lambda a: (-rank[a.split("/")[0]], a)):
            actual = snapshot.objects[address]
            protection = protected_archive(None, actual, "archiving it with --prune", "plan with --prune")
            if protection is not None:
                ctx.refusals.append(protection)
                continue
            operations += PLANNERS[actual.kind].archive(ctx, actual)
        unmanaged = []

    # A new applied digest is recorded by the object's own operations when it has any.
    changed = {op.address for op in operations}
    records = [r for r in records if not (r.digest and r.protect is None and r.ignore_changes is None
                                          and r.address in changed)]
    if targets:
        operations = _targeted(operations, targets)
        wanted = set(targets) | {op.address for op in operations}
        # Renames are made whatever the targets, as Terraform applies every moved block: the
        # store then holds one consistent set of keys (the re-digests of referrers go with them).
        records = [r for r in records if r.address in wanted or (r.protect is None and r.ignore_changes is None)]
    texts = {}
    errors = tuple(locate_all(ctx.refusals, texts))
    return Plan(
        lineage=snapshot.lineage,
        serial=snapshot.serial,
        manifests_digest=manifests_digest,
        operations=tuple(operations),
        drift=tuple(drift),
        unmanaged=tuple(unmanaged),
        errors=errors,
        targets=tuple(targets),
        prune=prune,
        moves=tuple(moves),
        records=tuple(records),
    )


def _replacing_a_metric_alone(ctx: PlanContext, manifest: Manifest, desired: dict[str, Manifest],
                              replace: tuple[str, ...]) -> bool:
    """A replaced billable metric gets a new id; the products pricing it would still name the old,
    archived one (a product's metric cannot change): refused unless they are replaced too."""
    if manifest.kind != "BillableMetric":
        return False
    users = [a for a in sorted(desired) if desired[a].kind == "Product" and a not in replace
             and desired[a].spec.get("billable_metric") == manifest.name]
    if users:
        ctx.refuse(manifest, (), f"--replace {manifest.address} would archive the metric that "
                                 f"{', '.join(users)} use; replace them too "
                                 f"({' '.join('--replace ' + a for a in users)}), or add a new metric under a "
                                 "new key and point new products at it")
    return bool(users)


def _as_replace(op: Operation) -> Operation:
    from dataclasses import replace as dc_replace

    from .operations import Action

    return dc_replace(op, action=Action.REPLACE, reason="replace requested (--replace)")


def _mark_drift(op: Operation) -> Operation:
    from dataclasses import replace as dc_replace

    return dc_replace(op, drift=True)


def _targeted(operations: list[Operation], targets: tuple[str, ...]) -> list[Operation]:
    """Only the targeted objects, plus the objects they need created first."""
    wanted = set(targets)
    changed = True
    while changed:
        changed = False
        for op in operations:
            if op.address in wanted:
                for dep in op.depends_on:
                    if dep not in wanted:
                        wanted.add(dep)
                        changed = True
    return [op for op in operations if op.address in wanted]
