"""Problems found in manifests, each located at file:line:column with its field path."""

from __future__ import annotations

from dataclasses import dataclass, field

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """('spec', 'commits', 0, 'amount') -> 'spec.commits[0].amount'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    address: str | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        parts = [where]
        if self.address:
            parts.append(self.address)
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass
class PendingProblem:
    """A problem known by document and field path; its line and column are found later."""

    file: str
    doc_index: int
    address: str | None
    path: Path
    message: str
    # Set when the position is already known (e.g. YAML syntax errors).
    line: int | None = None
    column: int | None = None
    # Point at the key of the last path step rather than its value (an unknown field).
    at_key: bool = False


@dataclass
class ManifestErrors(Exception):
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
