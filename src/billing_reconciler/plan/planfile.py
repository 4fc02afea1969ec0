"""The plan file: format, reading, and the staleness check (Terraform's lineage/serial rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import canonical
from ..manifests.errors import Problem
from .lifecycle import Recorded
from .moves import Move
from .operations import Operation
from .plan import FORMAT_VERSION, Drift, Plan


class PlanFileError(Exception):
    pass


class StalePlan(PlanFileError):
    pass


def plan_to_json(plan: Plan) -> dict[str, Any]:
    out = {
        "format_version": FORMAT_VERSION,
        "store": {"lineage": plan.lineage, "serial": plan.serial},
        "manifests_digest": plan.manifests_digest,
        "applyable": plan.applyable,
        "errored": plan.errored,
        "summary": plan.summary(),
        "operations": [op.to_json() for op in plan.operations],
        "drift": [d.to_json() for d in plan.drift],
        "unmanaged": list(plan.unmanaged),
        "errors": [p.__dict__ | {"location": f"{p.file}:{p.line}:{p.column}"} for p in plan.errors],
        "targets": list(plan.targets),
        "prune": plan.prune,
        # Store-only changes (no API call): renames, and lifecycle records (protect, ignored paths).
        "moved": [m.to_json() for m in plan.moves],
        "recorded": [r.to_json() for r in plan.records],
    }
    if plan.extras:
        out.update(plan.extras)
    return out


def write_plan(plan: Plan, path: str | Path) -> None:
    Path(path).write_text(canonical.dumps(plan_to_json(plan), indent=2, sort_keys=False) + "\n")


def read_plan(path: str | Path) -> Plan:
    try:
        data = canonical.loads(Path(path).read_text())
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise PlanFileError(f"{path} is not a plan file (invalid JSON: {exc})") from None
    version = str(data.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise PlanFileError(f"{path}: plan format_version {version or '?'} is not readable by this version "
                            f"(reads {FORMAT_VERSION.split('.')[0]}.x); re-run plan")
    store = data.get("store") or {}
    return Plan(
        lineage=store.get("lineage"),
        serial=int(store.get("serial", 0)),
        manifests_digest=data.get("manifests_digest", ""),
        operations=tuple(Operation.from_json(o) for o in data.get("operations", [])),
        drift=tuple(Drift(d["address"], ()) for d in data.get("drift", [])),
        unmanaged=tuple(data.get("unmanaged", [])),
        errors=tuple(Problem(e["file"], e["line"], e["column"], e.get("address"), e.get("path", ""), e["message"])
                     for e in data.get("errors", [])),
        targets=tuple(data.get("targets", [])),
        prune=bool(data.get("prune", False)),
        moves=tuple(Move.from_json(m) for m in data.get("moved", [])),
        records=tuple(Recorded.from_json(r) for r in data.get("recorded", [])),
    )


def check_fresh(plan: Plan, lineage: str | None, serial: int) -> None:
    """Refuse a plan made against another store, or before another apply."""
    if plan.lineage != lineage:
        if plan.lineage is None:
            raise StalePlan("the plan was made against an empty, uninitialised store, and the store has been "
                            "initialised or applied since; run plan again")
        raise StalePlan(f"the plan was made against store lineage {plan.lineage}, but this store is "
                        f"{lineage}; run plan against this store")
    if plan.serial != serial:
        raise StalePlan(f"the plan is stale: it was made at store serial {plan.serial}, and the store is now at "
                        f"serial {serial} (another apply ran since); run plan again")
