"""A loaded, validated manifest document in canonical form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Path, PendingProblem


@dataclass(slots=True)
class Manifest:
    kind: str
    name: str
    spec: dict[str, Any]
    file: str
    index: int  # position of the document in its file, from 0
    digest: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    def problem(self, path: Path, message: str) -> PendingProblem:
        return PendingProblem(self.file, self.index, self.address, path, message)
