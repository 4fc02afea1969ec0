"""Manifest files -> validated Manifests, or every problem of the run, located.

Steps: read and hash every file; take unchanged files from the cache; parse and validate the
others (parse.py, in worker processes for big trees: pool.py); check references across all
documents on their small views (references.py); only then re-read files that have problems with
ruamel.yaml's round-trip loader to turn field paths into line:column (locate.py). A warm run thus
imports neither pydantic nor ruamel.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path as FsPath

from .cache import ManifestCache
from .document import Manifest
from .errors import ManifestErrors, PendingProblem, Problem, format_path
from .parse import UNREAD_NOTE, ParsedFile, parse_file  # noqa: F401 - parse_file is part of this module's API
from .reading import Unreadable, read_manifest
from .references import View, check_references

MANIFEST_SUFFIXES = (".yaml", ".yml")


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
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .git, editor and cache directories
        # os.walk does not descend into a directory symlink: list it, so that reading it reports
        # it (reading.py) rather than its manifests silently missing from the tree.
        found.extend(FsPath(root) / d for d in dirs if os.path.islink(os.path.join(root, d)))
        found.extend(FsPath(root) / name for name in names
                     if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."))
    return sorted(found)


def display_path(path: FsPath) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load_manifests(directory: str | os.PathLike[str], *, cache: ManifestCache | None = None,
                   workers: int | None = None) -> LoadResult:
    """Load every manifest under `directory`; `workers` None picks by tree size and cores."""
    # A load allocates hundreds of thousands of small, acyclic objects that live on: the cyclic
    # GC would rescan them over and over (a third of the time spent on cached reference views).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(FsPath(directory), cache, workers)
    finally:
        if enabled:
            gc.enable()


def _load(root: FsPath, cache: ManifestCache | None, workers: int | None) -> LoadResult:
    if not root.exists():
        problem = Problem(str(root), 0, 0, None, "",
                          "manifest directory does not exist; create it or pass --manifests DIR")
        return LoadResult([], [problem], 0, "")
    files = manifest_files(root)
    pending: list[PendingProblem] = []
    texts: dict[str, str] = {}
    parsed: list[ParsedFile | None] = []
    to_parse: list[tuple[int, tuple[str, str, str]]] = []
    tree_hash = hashlib.sha256()
    for path in files:
        try:
            data = read_manifest(path)
        except Unreadable as exc:
            shown = display_path(path)
            tree_hash.update(shown.encode() + b"\0unreadable\0")
            parsed.append(ParsedFile(shown, "", problems=[PendingProblem(
                shown, 0, None, (), f"{exc}{UNREAD_NOTE}", line=1, column=1)], readable=False))
            continue
        content_hash = hashlib.sha256(data).hexdigest()
        shown = display_path(path)
        tree_hash.update(shown.encode() + b"\0" + content_hash.encode() + b"\0")
        cached = cache.get(shown, content_hash) if cache is not None else None
        parsed.append(cached)
        if cached is not None:
            continue
        text = _decode(data, shown, pending)
        if text is not None:
            texts[shown] = text
            to_parse.append((len(parsed) - 1, (shown, content_hash, text)))

    if to_parse:
        from .pool import default_workers, parse_all

        items = [item for _, item in to_parse]
        if workers is None:
            workers = default_workers(sum(len(text) for _, _, text in items))
        for (slot, _), result in zip(to_parse, parse_all(items, workers)):
            parsed[slot] = result
            if cache is not None:
                cache.put(result)

    manifests: list[Manifest] = []
    for result in parsed:
        if result is not None:
            manifests.extend(result.manifests())
            pending.extend(result.problems)
    digest = "sha256:" + tree_hash.hexdigest()
    complete = all(r is not None and r.readable for r in parsed)
    pending.extend(_reference_problems(digest, [r for r in parsed if r is not None], cache, complete))
    if cache is not None:
        cache.save()
    problems = locate_all(pending, texts)
    return LoadResult(manifests, problems, len(files), digest)


def _reference_problems(tree_digest: str, parsed: list[ParsedFile], cache: ManifestCache | None,
                        complete: bool) -> list[PendingProblem]:
    """Cross-object checks; the same tree as last time (the usual warm run) gets the same verdict."""
    known = cache.reference_problems(tree_digest) if cache is not None else None
    if known is not None:
        return known
    views: list[View] = []
    for result in parsed:
        views.extend(result.reference_views())
    problems = check_references(views, complete)
    if cache is not None:
        cache.put_reference_problems(tree_digest, problems)
    return problems


def load_or_raise(directory: str | os.PathLike[str], *, cache: ManifestCache | None = None) -> LoadResult:
    result = load_manifests(directory, cache=cache)
    if result.problems:
        raise ManifestErrors(result.problems)
    return result


def _decode(data: bytes, shown: str, pending: list[PendingProblem]) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        pending.append(PendingProblem(
            shown, 0, None, (),
            f"file is not UTF-8 text (byte 0x{data[exc.start]:02x}: {exc.reason}); save it as UTF-8{UNREAD_NOTE}",
            line=line, column=column))
        return None


def locate_all(pending: Iterable[PendingProblem], texts: dict[str, str]) -> list[Problem]:
    """Turn field paths into line:column, re-reading each affected file once."""
    pending = list(pending)
    if not pending:
        return []
    from .locate import FileDocuments, locate

    documents: dict[str, FileDocuments | None] = {}
    problems: list[Problem] = []
    for p in pending:
        if p.line is not None:
            problems.append(Problem(p.file, p.line, p.column or 1, p.address, format_path(p.path), p.message))
            continue
        if p.file not in documents:
            text = texts.get(p.file)
            try:
                if text is None:
                    text = read_manifest(FsPath(p.file)).decode("utf-8")
                documents[p.file] = FileDocuments(text)
            except Exception:  # noqa: BLE001 - positions are best effort, the problem is not
                documents[p.file] = None
        docs = documents[p.file]
        try:
            line, column = 1, 1
            if docs is not None and not docs.within_budget(p.doc_index):
                line = docs.start_line(p.doc_index)  # past the budget: the document, not the field
            elif docs is not None and (found := docs.get(p.doc_index)) is not None:
                line, column = locate(found[0], p.path, p.at_key)
                line += found[1]
        except Exception:  # noqa: BLE001 - an odd node must not hide the problem itself
            line, column = 1, 1
        problems.append(Problem(p.file, line, column, p.address, format_path(p.path), p.message))
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.address or "", p.path, p.message))
