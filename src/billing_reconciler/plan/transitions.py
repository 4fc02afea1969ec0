"""Contract transitions on the desired side: a contract another one supersedes or renews ends
where its successor starts.

The billing API ends the old contract itself when the new one is created with
`transition.from_contract_id`; the backend then reads it back with that end date. So that the
manifests mean what the backend will hold (and the plan after apply is empty), the old contract's
desired `ending_before` is the earlier of its own and its successor's `starting_at`; the plan shows
it as an `update_contract_end_date` on the old contract, with the transition as its reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..manifests.document import Manifest, StoredManifest
from ..specform import spec_digest
from ..timeutil import parse_timestamp


def _may_have_transition(m: Manifest) -> bool:
    """Without parsing a cached spec that cannot have one (a no-op plan reads no spec)."""
    if isinstance(m, StoredManifest) and Manifest.__dict__["spec"].__get__(m) is None:
        blob = m._blob
        return (b'"transition"' in blob) if isinstance(blob, bytes) else ('"transition"' in blob)
    return "transition" in m.spec


def ended_by_transitions(manifests: Iterable[Manifest]) -> tuple[list[Manifest], dict[str, str]]:
    """The manifests with each transitioned-from contract's `ending_before` set to its successor's
    start (when that is earlier), and per changed address the reason to show."""
    manifests = list(manifests)
    successors: dict[str, Manifest] = {}
    for m in manifests:
        if m.kind == "Contract" and _may_have_transition(m):
            transition = m.spec.get("transition")
            if transition:
                successors.setdefault(transition["from"], m)
    if not successors:
        return manifests, {}
    out, reasons = [], {}
    for m in manifests:
        successor = successors.get(m.name) if m.kind == "Contract" else None
        if successor is not None:
            start, end = successor.spec["starting_at"], m.spec.get("ending_before")
            if end is None or parse_timestamp(start) < parse_timestamp(end):
                spec = {**m.spec, "ending_before": start}
                m = Manifest(m.kind, m.name, spec, m.file, m.index, spec_digest(spec), m.labels, m.sensitive)
                reasons[m.address] = (f"ended by the {successor.spec['transition']['type']} transition of "
                                      f"{successor.address} at its start")
        out.append(m)
    return out, reasons
