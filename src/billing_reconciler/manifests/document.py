"""A loaded, validated manifest document in canonical form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..canonical import loads as canonical_loads
from .errors import Path, PendingProblem


@dataclass(slots=True, eq=False)
class Manifest:
    kind: str
    name: str
    spec: dict[str, Any]
    file: str
    index: int  # position of the document in its file, from 0
    digest: str
    labels: dict[str, str] = field(default_factory=dict)
    sensitive: tuple[str, ...] = ()  # metadata.sensitive: spec paths whose values are secrets
    # metadata.moved_from / ignore_changes / protect, as plain data ({} when none: most documents).
    lifecycle: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        # By value, whether the spec is still JSON text (StoredManifest) or not.
        if not isinstance(other, Manifest):
            return NotImplemented
        return (self.kind, self.name, self.file, self.index, self.digest, self.labels, self.sensitive,
                self.lifecycle, self.spec) == (other.kind, other.name, other.file, other.index, other.digest,
                                               other.labels, other.sensitive, other.lifecycle, other.spec)

    __hash__ = None  # type: ignore[assignment]  # mutable, like any eq dataclass

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def moved_from(self) -> tuple[str, ...]:
        return tuple(self.lifecycle.get("moved_from", ()))

    @property
    def ignore_changes(self) -> tuple[str, ...]:
        return tuple(self.lifecycle.get("ignore_changes", ()))

    @property
    def protect(self) -> bool:
        return bool(self.lifecycle.get("protect", False))

    def problem(self, path: Path, message: str) -> PendingProblem:
        return PendingProblem(self.file, self.index, self.address, path, message)


_SPEC_SLOT = Manifest.__dict__["spec"]  # the slot itself, under the property below
_new = object.__new__
_KIND, _NAME, _SPEC, _FILE, _INDEX, _DIGEST, _LABELS, _SENSITIVE, _LIFECYCLE = (
    Manifest.__dict__[name].__set__
    for name in ("kind", "name", "spec", "file", "index", "digest", "labels", "sensitive", "lifecycle"))


class StoredManifest(Manifest):
    """A Manifest whose spec stays canonical JSON text until first read.

    Cached and worker-parsed documents arrive as text; `validate` never reads a spec (reference
    checks use the small views in references.py), so a warm run does not pay for rebuilding
    tens of thousands of nested dicts.
    """

    __slots__ = ("_blob",)

    @classmethod
    def from_blob(cls, kind: str, name: str, blob: str | bytes, file: str, index: int, digest: str,
                  labels: dict[str, str], sensitive: tuple[str, ...] = (),
                  lifecycle: dict[str, Any] | None = None) -> StoredManifest:
        # Slots set directly: tens of thousands are made per load, the dataclass __init__ costs 3x.
        self = _new(cls)
        _KIND(self, kind)
        _NAME(self, name)
        _SPEC(self, None)
        _FILE(self, file)
        _INDEX(self, index)
        _DIGEST(self, digest)
        _LABELS(self, labels)
        _SENSITIVE(self, sensitive)
        _LIFECYCLE(self, lifecycle or {})
        self._blob = blob
        return self

    @property  # type: ignore[override]
    def spec(self) -> dict[str, Any]:
        spec = _SPEC_SLOT.__get__(self)
        if spec is None:
            spec = canonical_loads(self._blob)
            _SPEC_SLOT.__set__(self, spec)
        return spec

    @spec.setter
    def spec(self, value: dict[str, Any]) -> None:
        _SPEC_SLOT.__set__(self, value)
