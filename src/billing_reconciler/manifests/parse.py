"""One manifest file's text -> its validated documents, their reference views and its problems.

This is the unit of work of a load: it runs in worker processes for big trees and its result is
what the cache stores, so it holds only plain, compact data: specs and reference views as JSON text
(the canonical form's own serialisation), never pickles, so a cache file is data and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..canonical import dumps as canonical_dumps
from .agreement import forbidden_character, lost_document
from .document import Manifest, StoredManifest
from .errors import PendingProblem
from .references import Ref, View, find_refs, prune

# Said of a file that cannot be read: references to objects it might define are not checked.
UNREAD_NOTE = " (references to other manifests are checked once every file can be read)"
_DOC_START = re.compile(r"(?m)^---")
_YAML_RS_POSITION = re.compile(r"line (\d+), column (\d+)")
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])(\*[^\s,\[\]{}]+)", re.M)

# A valid document as stored: (kind, name, index, digest, labels, canonical spec as JSON text,
# sensitive paths, lifecycle metadata: moved_from / ignore_changes / protect, {} when none).
DocRecord = tuple[str, str, int, str, dict[str, str], str, tuple[str, ...], dict[str, Any]]
# The reference view of any document with a readable kind and name: (kind, name, index, view, refs, valid).
ViewRecord = tuple[str, str, int, dict[str, Any], list[Ref], bool]


@dataclass
class ParsedFile:
    file: str
    content_hash: str
    docs: list[DocRecord] = field(default_factory=list)
    # JSON text of the ViewRecords of a clean file (what the cache keeps; only decoded when
    # references must be re-checked); the records themselves for a file with problems, whose raw
    # specs may hold what JSON cannot (keys that are not text) and which is never cached.
    views: str | list[ViewRecord] = ""
    problems: list[PendingProblem] = field(default_factory=list)
    readable: bool = True  # False: not YAML at all, so what it defines is unknown

    def manifests(self) -> list[Manifest]:
        new = StoredManifest.from_blob
        file = self.file
        return [new(kind, name, blob, file, index, digest, labels, sensitive, lifecycle)
                for kind, name, index, digest, labels, blob, sensitive, lifecycle in self.docs]

    def reference_views(self) -> list[View]:
        records = json.loads(self.views) if isinstance(self.views, str) and self.views else self.views or []
        # JSON has no tuples: a ref's path and a multi-list target come back as lists.
        return [View(kind, name, self.file, index, spec,
                     [(tuple(path), target if isinstance(target, str) else tuple(target), key)
                      for path, target, key in refs], valid)
                for kind, name, index, spec, refs, valid in records]


def parse_text(shown: str, content_hash: str, text: str) -> ParsedFile:
    from .validate import raw_identity, validate_document  # pydantic: only when something is parsed

    result = ParsedFile(shown, content_hash)
    views: list[ViewRecord] = []
    refused = forbidden_character(text)
    raws = None if refused else fast_parse(text)
    if raws is not None:
        refused = lost_document(text, len(raws))
    if refused is not None:
        line, column, message = refused
        result.problems.append(PendingProblem(shown, 0, None, (), f"{message}{UNREAD_NOTE}", line=line, column=column))
        result.readable = False
        return result
    if raws is None:
        line, column, message = syntax_error(text)
        result.problems.append(PendingProblem(shown, 0, None, (), f"YAML syntax error: {message}{UNREAD_NOTE}",
                                              line=line, column=column))
        result.readable = False
        return result
    for index, raw in enumerate(raws):
        if raw is None:  # an empty document, e.g. after a trailing '---'
            continue
        doc, problems = validate_document(raw, shown, index)
        result.problems.extend(problems)
        if doc is not None:
            result.docs.append((doc.kind, doc.name, index, doc.digest, doc.labels,
                                canonical_dumps(doc.spec, sort_keys=False),  # the models' field order, as written
                                doc.sensitive, doc.lifecycle))
            views.append(_view(doc.kind, doc.name, index, doc.spec, True))
        else:
            identity = raw_identity(raw)
            if identity is not None:  # best effort: its references are still checked
                kind, name = identity
                views.append(_view(kind, name, index, raw.get("spec"), False))
    result.views = views if result.problems else canonical_dumps(views, sort_keys=False)
    return result


def _view(kind: str, name: str, index: int, spec: Any, valid: bool) -> ViewRecord:
    return kind, name, index, prune(kind, spec), find_refs(kind, spec), valid


def parse_file(shown: str, text: str) -> tuple[list[Manifest], list[PendingProblem]]:
    """The valid documents of one file and the problems of the others."""
    parsed = parse_text(shown, "", text)
    return parsed.manifests(), parsed.problems


def fast_parse(text: str) -> list[object] | None:
    """All documents of a file, or None when the YAML is malformed (duplicate keys included)."""
    try:
        import yaml_rs
    except ImportError:  # pragma: no cover - yaml-rs is a dependency; keep working without it
        return _ruamel_parse(text)
    try:
        result = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any decode error: let ruamel locate it
        return None
    # yaml_rs returns the document itself for a single-document file, a list for several; a
    # file without any "---" line holds one document, even when that document is a list.
    if result is None:
        return []
    if isinstance(result, list) and _DOC_START.search(text):
        return result
    return [result]


def _ruamel_parse(text: str) -> list[object] | None:  # pragma: no cover - fallback only
    from ruamel.yaml import YAML

    try:
        return list(YAML(typ="safe", pure=False).load_all(text))
    except Exception:  # noqa: BLE001
        return None


def syntax_error(text: str) -> tuple[int, int, str]:
    """(line, column, message) of the first YAML error: ruamel's words, else yaml_rs's position."""
    from .locate import syntax_error as ruamel_syntax_error

    found = ruamel_syntax_error(text)
    if found is not None:
        return found
    # ruamel accepted what yaml_rs refused: report yaml_rs's own message and position.
    try:
        import yaml_rs

        yaml_rs.loads(text, parse_datetime=False)
    except Exception as exc:  # noqa: BLE001
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        where = _YAML_RS_POSITION.search(lines[0]) if lines else None
        message = lines[-1] if lines else "not valid YAML"
        if "alias" in message and (alias := _ALIAS.search(text)) is not None:
            # An alias bomb: refused by yaml_rs's replay limit, which names no position.
            line = text.count("\n", 0, alias.start(1)) + 1
            column = alias.start(1) - (text.rfind("\n", 0, alias.start(1)) + 1) + 1
            return line, column, (f"{message}: the file's aliases expand to over a million values (an alias "
                                  "bomb?); write the values out instead of nesting aliases")
        if where:
            return int(where.group(1)), int(where.group(2)), message
        return 1, 1, message
    return 1, 1, "not valid YAML"
