"""The plan file: format, reading, and the staleness check (Terraform's lineage/serial rule).

A plan file holds no secret: every secret value (redaction.py decides which) is written as
"(sensitive) hmac-sha256:<hex>", keyed with the store's digest key, and the file is made 0600.
`apply FILE` therefore cannot send the file's bodies: it plans again from the manifests (and the
environment) and sends those, after checking that the plan it made, written the same way, is the
file's (same_plan).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import canonical
from ..manifests.errors import Problem
from ..redaction import DIGEST_SCHEME, NO_MARKS, SENSITIVE, AccountSecrets
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


def redacted_plan_json(plan: Plan, secrets: AccountSecrets = NO_MARKS) -> dict[str, Any]:
    """plan_to_json(plan) with every secret in operations and drift hidden: "(sensitive)" (what
    is printed), or with a keyed `secrets`, "(sensitive)" plus the keyed digest (the plan file)."""
    doc = plan_to_json(plan)
    doc["operations"] = [_operation(op, secrets) for op in doc["operations"]]
    doc["drift"] = [{**d, "changes": [secrets(d["address"]).change(c) for c in d.get("changes", [])]}
                    for d in doc["drift"]]
    return doc


def _operation(op: dict[str, Any], secrets: AccountSecrets) -> dict[str, Any]:
    redactor = secrets(op["address"])
    changes = op.get("changes", [])
    out = redactor.value({k: v for k, v in op.items() if k != "changes"})
    out["changes"] = [redactor.change(c) for c in changes]
    if out.get("spec_digest") and out.get("spec_after") != op.get("spec_after"):
        # A plain hash of a spec holding a secret lets anyone with the manifests test guesses of it.
        out["spec_digest"] = redactor.hidden(op["spec_digest"])
    return {k: out[k] for k in op}  # the plan file's key order


def plan_file_json(plan: Plan, secrets: AccountSecrets, digest_key: bytes) -> dict[str, Any]:
    """The plan file's document: secrets as keyed digests (the store's key)."""
    return redacted_plan_json(plan, secrets.keyed(digest_key))


def write_plan(plan: Plan, path: str | Path, secrets: AccountSecrets, digest_key: bytes) -> None:
    """Write the plan file, readable by its owner only (0600, also when it existed before)."""
    text = canonical.dumps(plan_file_json(plan, secrets, digest_key), indent=2, sort_keys=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(fd, 0o600)
        out.write(text)


# Fields of a plan file that `apply FILE` does not re-derive: what `plan --usage` adds.
NOT_REDERIVED = frozenset({"invoice_impact"})


def plan_differences(given: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    """Where a plan file differs from the plan made again now (both as plan_file_json), as
    `path: file has X, the plan made now has Y` lines; [] when they are the same plan."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(out) >= 5:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in [*a, *(k for k in b if k not in a)]:
                if not path and key in NOT_REDERIVED:
                    continue
                if key not in a:
                    out.append(f"{path}{key}: missing from the plan file")
                elif key not in b:
                    out.append(f"{path}{key}: in the plan file only")
                else:
                    walk(a[key], b[key], f"{path}{key}.")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                named = f" ({x['address']})" if isinstance(x, dict) and isinstance(x.get("address"), str) else ""
                walk(x, y, f"{path.rstrip('.')}[{i}]{named}.")
        elif path == "manifests_digest." and a != b:
            out.append(f"manifests_digest: the manifests changed since this plan was made ({_short(a)} -> {_short(b)})")
        elif canonical.dumps(a) != canonical.dumps(b) and _is_digest(a) and _is_digest(b):
            out.append(f"{path.rstrip('.')}: a secret's value is not the one planned (the environment or the "
                       "manifests changed since; or the file was edited)")
        elif canonical.dumps(a) != canonical.dumps(b):
            out.append(f"{path.rstrip('.')}: the plan file has {_short(a)}, the plan made now has {_short(b)}")

    walk(given, derived, "")
    return out


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(f"{SENSITIVE} {DIGEST_SCHEME}:")


def _short(value: Any) -> str:
    text = canonical.dumps(value)
    if isinstance(value, list):
        text = f"{len(value)} item(s)"
    return text if len(text) <= 80 else text[:77] + "..."


def read_plan_document(path: str | Path) -> dict[str, Any]:
    """The plan file's JSON document, of a format version this release reads."""
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
    return data


def read_plan(path: str | Path) -> Plan:
    return plan_from_json(read_plan_document(path))


def plan_from_json(data: dict[str, Any]) -> Plan:
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
        extras={"backend": data["backend"]} if isinstance(data.get("backend"), dict) else {},
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
