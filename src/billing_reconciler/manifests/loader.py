"""Manifest files -> validated Manifests, or every problem of the run, located.

Files are bulk-parsed with a Rust/C-backed YAML loader; only files with problems are re-read with
ruamel.yaml's round-trip loader to turn field paths into line:column. Parsed and validated files
are cached by content hash, so an unchanged tree loads without YAML parsing or pydantic.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path as FsPath

from .cache import ManifestCache
from .document import Manifest
from .errors import ManifestErrors, PendingProblem, Problem, format_path
from .references import check_references

MANIFEST_SUFFIXES = (".yaml", ".yml")
_DOC_START = re.compile(r"(?m)^---")


@dataclass
class LoadResult:
    manifests: list[Manifest]
    problems: list[Problem]
    files: int
    digest: str  # of all manifest file contents: a plan made from other files is refused

    @property
    def ok(self) -> bool:
        return not self.problems


def manifest_files(directory: FsPath) -> list[FsPath]:
    if directory.is_file():
        return [directory]
    found = [
        FsPath(root) / name
        for root, dirs, names in os.walk(directory)
        for name in names
        if name.endswith(MANIFEST_SUFFIXES) and not name.startswith(".")
    ]
    return sorted(found)


def display_path(path: FsPath) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load_manifests(directory: str | os.PathLike[str], *, cache: ManifestCache | None = None) -> LoadResult:
    root = FsPath(directory)
    if not root.exists():
        problem = Problem(str(directory), 0, 0, None, "",
                          "manifest directory does not exist; create it or pass --manifests DIR")
        return LoadResult([], [problem], 0, "")
    files = manifest_files(root)
    manifests: list[Manifest] = []
    pending: list[PendingProblem] = []
    texts: dict[str, str] = {}
    tree_hash = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        content_hash = hashlib.sha256(data).hexdigest()
        shown = display_path(path)
        tree_hash.update(shown.encode() + b"\0" + content_hash.encode() + b"\0")
        cached = cache.get(shown, content_hash) if cache is not None else None
        if cached is not None:
            manifests.extend(cached)
            continue
        text = _decode(data, shown, pending)
        if text is None:
            continue
        texts[shown] = text
        docs, problems = parse_file(shown, text)
        if problems:
            pending.extend(problems)
        else:
            manifests.extend(docs)
            if cache is not None:
                cache.put(shown, content_hash, docs)
    pending.extend(check_references(manifests))
    if cache is not None:
        cache.save()
    problems = locate_all(pending, texts)
    return LoadResult(manifests, problems, len(files), "sha256:" + tree_hash.hexdigest())


def load_or_raise(directory: str | os.PathLike[str], *, cache: ManifestCache | None = None) -> LoadResult:
    result = load_manifests(directory, cache=cache)
    if result.problems:
        raise ManifestErrors(result.problems)
    return result


def _decode(data: bytes, shown: str, pending: list[PendingProblem]) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        pending.append(PendingProblem(shown, 0, None, (), f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                      line=1, column=1))
        return None


def parse_file(shown: str, text: str) -> tuple[list[Manifest], list[PendingProblem]]:
    from .validate import validate_document

    raws = _fast_parse(text)
    if raws is None:
        from .locate import syntax_error

        found = syntax_error(text) or (1, 1, "not valid YAML")
        line, column, message = found
        return [], [PendingProblem(shown, 0, None, (), f"YAML syntax error: {message}", line=line, column=column)]
    docs: list[Manifest] = []
    problems: list[PendingProblem] = []
    for index, raw in enumerate(raws):
        if raw is None:
            continue
        doc, doc_problems = validate_document(raw, shown, index)
        problems.extend(doc_problems)
        if doc is not None:
            docs.append(doc)
    return docs, problems


def _fast_parse(text: str) -> list[object] | None:
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


def _ruamel_parse(text: str) -> list[object] | None:
    from ruamel.yaml import YAML

    try:
        return list(YAML(typ="safe", pure=False).load_all(text))
    except Exception:  # noqa: BLE001
        return None


def locate_all(pending: Iterable[PendingProblem], texts: dict[str, str]) -> list[Problem]:
    """Turn field paths into line:column, re-reading each affected file once."""
    from .locate import load_documents_rt, locate

    documents: dict[str, list[object]] = {}
    problems: list[Problem] = []
    for p in pending:
        if p.line is not None:
            problems.append(Problem(p.file, p.line, p.column or 1, p.address, format_path(p.path), p.message))
            continue
        if p.file not in documents:
            text = texts.get(p.file)
            if text is None:
                text = FsPath(p.file).read_text(encoding="utf-8")
            try:
                documents[p.file] = load_documents_rt(text)
            except Exception:  # noqa: BLE001 - positions are best effort, the problem is not
                documents[p.file] = []
        docs = documents[p.file]
        line, column = locate(docs[p.doc_index], p.path) if p.doc_index < len(docs) else (1, 1)
        problems.append(Problem(p.file, line, column, p.address, format_path(p.path), p.message))
    return sorted(set(problems))
