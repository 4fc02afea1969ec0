"""What a manifest's lifecycle metadata does to a plan: ignored paths (the spec the planners
compare, the digest the store keeps), durable protection, and the store-only records an apply
makes (protect flag, ignored paths, a re-digest) when no API call is needed for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ignorepaths import mask, strip
from ..manifests.document import Manifest
from ..manifests.errors import PendingProblem
from ..specform import spec_digest
from ..store.store import StoredObject
from .operations import Addressed


@dataclass(frozen=True)
class Recorded(Addressed):
    """What an apply records about an object in the store alone (no API call); None: unchanged."""

    address: str
    protect: bool | None = None
    ignore_changes: tuple[str, ...] | None = None
    digest: str | None = None  # the applied digest (references renamed, or the ignored paths changed)

    def changes(self, before: StoredObject | None) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for display."""
        out: list[tuple[str, Any, Any]] = []
        if self.protect is not None:
            out.append(("metadata.protect", bool(before and before.protected), self.protect))
        if self.ignore_changes is not None:
            out.append(("metadata.ignore_changes", list(before.ignore_changes) if before else [],
                        list(self.ignore_changes)))
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address}
        if self.protect is not None:
            out["protect"] = self.protect
        if self.ignore_changes is not None:
            out["ignore_changes"] = list(self.ignore_changes)
        if self.digest is not None:
            out["digest"] = self.digest
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recorded:
        ignore = data.get("ignore_changes")
        return cls(data["address"], data.get("protect"), None if ignore is None else tuple(ignore), data.get("digest"))


def desired_digest(manifest: Manifest) -> str:
    """The digest the store keeps for this manifest once applied: without its ignored paths."""
    if not manifest.ignore_changes:
        return manifest.digest
    return spec_digest(strip(manifest.spec, manifest.ignore_changes))


def as_planned(manifest: Manifest, actual: StoredObject | None, digest: str) -> Manifest:
    """The manifest the per-kind planners see: on update, the backend's values under its ignored
    paths (so nothing is planned for them); on create, its own (the value is sent once)."""
    if not manifest.ignore_changes:
        return manifest
    spec = manifest.spec if actual is None else mask(manifest.spec, actual.spec, manifest.ignore_changes)
    return Manifest(manifest.kind, manifest.name, spec, manifest.file, manifest.index, digest, manifest.labels,
                    manifest.sensitive, manifest.lifecycle)


def record_for(manifest: Manifest, actual: StoredObject | None, digest: str, redigest: bool) -> Recorded | None:
    """The store-only record this manifest needs, if any. `redigest`: the object's references were
    renamed, so its applied digest must become the manifest's even without an API call."""
    protect = manifest.protect if manifest.protect != bool(actual and actual.protected) else None
    stored_ignore = actual.ignore_changes if actual is not None else ()
    ignore = manifest.ignore_changes if tuple(manifest.ignore_changes) != tuple(stored_ignore) else None
    new_digest = digest if actual is not None and (redigest or ignore is not None) and digest != actual.applied_digest \
        else None
    if protect is None and ignore is None and new_digest is None:
        return None
    return Recorded(manifest.address, protect, ignore, new_digest)


PROTECTED = ("protected (metadata.protect: true, recorded in the store when it was applied): {what} is "
             "refused; to archive it, first apply its manifest with protect: false (restore the manifest "
             "if it was deleted), then {again}")


def protected_archive(manifest: Manifest | None, actual: StoredObject, what: str, again: str,
                      ) -> PendingProblem | None:
    """The refusal of archiving a protected object (its manifest's protect, or the store's)."""
    if not (actual.protected or (manifest is not None and manifest.protect)):
        return None
    message = PROTECTED.format(address=actual.address, what=what, again=again)
    if manifest is not None:
        path = ("metadata", "protect") if "protect" in manifest.lifecycle else ("metadata",)
        return manifest.problem(path, message)
    return PendingProblem("(store)", 0, actual.address, (), message, line=1, column=1)
