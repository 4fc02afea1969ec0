"""Parse cache: each cleanly validated file's ParsedFile, keyed by its content digest.

The cache is data, never code: one JSON file in the user's cache directory
(`$BILLING_RECONCILER_CACHE_DIR`, else `$XDG_CACHE_HOME/billing-reconciler`, else
`~/.cache/billing-reconciler`), outside the work tree, so that nothing a pull request adds to a
checkout is ever read as a cache. (It used to be a pickle under `.billing-reconciler/cache/` in the
working directory: a pull request could add one with `git add -f`, and every command that loads
manifests ran it.) A file that is not JSON, or not of this format, is ignored and rewritten.

There is one cache file per manifests directory (named by a digest of its absolute path); inside,
entries are keyed by the sha256 of a file's bytes. The file also records a fingerprint of the
source of this package and of the modules its verdicts depend on, so a code change never serves a
stale verdict. Only files without problems are cached (broken files are re-read to locate their
problems anyway). Specs are stored as canonical JSON text per document and decoded only when read; a
CRC over the whole file guards against damage.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

from .errors import PendingProblem
from .parse import ParsedFile

CACHE_DIR_ENV = "BILLING_RECONCILER_CACHE_DIR"
_HERE = Path(__file__).parent
_ALSO_DEPENDS_ON = ("canonical.py", "money.py", "timeutil.py", "specform.py")
FORMAT = 3  # 3: JSON, keyed by content digest (2 was a pickle in the work tree)


def cache_dir() -> Path:
    """The user's cache directory for billing-reconciler (never inside a work tree)."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "billing-reconciler"


def cache_path_for(manifests_dir: str | os.PathLike[str]) -> Path:
    """The cache file of one manifests directory."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(manifests_dir))).hexdigest()[:24]
    return cache_dir() / f"manifests-{key}.json"


def _code_fingerprint() -> str:
    h = hashlib.sha256(str(FORMAT).encode())
    sources = sorted(_HERE.glob("*.py")) + [_HERE.parent / name for name in _ALSO_DEPENDS_ON]
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


# One entry as stored: (docs without their specs, views JSON, spec JSON texts).
Entry = tuple[list[Any], "str | bytes", list["str | bytes"]]


def _docs_ok(meta: Any, specs: list[bytes]) -> bool:
    """One [kind, name, index, digest, labels, sensitive paths, lifecycle] per spec line (the whole file's
    checksum has already vouched for the bytes; this catches an entry of another shape)."""
    return (isinstance(meta, list) and len(meta) == len(specs)
            and all(type(doc) is list and len(doc) == 7 and type(doc[6]) is dict for doc in meta))


def _problem_from_json(raw: Any) -> PendingProblem:
    file, doc_index, address, path, message, line, column, at_key = raw
    if not (isinstance(file, str) and type(doc_index) is int and (address is None or isinstance(address, str))
            and isinstance(path, list) and all(isinstance(p, (str, int)) for p in path)
            and isinstance(message, str) and (line is None or type(line) is int)
            and (column is None or type(column) is int) and isinstance(at_key, bool)):
        raise ValueError("not a problem record")
    return PendingProblem(file, doc_index, address, tuple(path), message, line, column, at_key)


def _problem_to_json(p: PendingProblem) -> list[Any]:
    return [p.file, p.doc_index, p.address, list(p.path), p.message, p.line, p.column, p.at_key]


class ManifestCache:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fingerprint = _code_fingerprint()
        self._entries: dict[str, Entry] = {}
        # The cross-object verdict for one whole tree: (tree digest, its reference problems).
        self._references: tuple[str, list[PendingProblem]] | None = None
        self._used: set[str] = set()
        self._dirty = False
        self._load()

    @classmethod
    def for_manifests(cls, manifests_dir: str | os.PathLike[str]) -> ManifestCache:
        return cls(cache_path_for(manifests_dir))

    def _load(self) -> None:
        """Read the cache file; anything unreadable, foreign or malformed counts as no cache.

        Layout, one line each: a JSON header {format, fingerprint, references, files: N, crc32 of
        everything after the header}; then per entry its content digest, the JSON list of its
        documents' [kind, name, index, digest, labels, sensitive paths, lifecycle], its reference views as JSON
        text, and one line per document with its canonical spec as JSON text, kept undecoded
        (compact JSON never holds a raw newline). Nested JSON strings would cost an unescaping pass
        over every spec; lines cost a split. One CRC over the body (~10 ms for 25 MB) instead of a
        hash per spec (~50 ms): it guards against damage; what is in the user's own cache directory
        is trusted not to be forged, and is data in any case.
        """
        try:
            data = self.path.read_bytes()
            end = data.index(b"\n")
            header = json.loads(data[:end])
        except (OSError, ValueError, RecursionError):
            return
        if not (isinstance(header, dict) and header.get("format") == FORMAT
                and header.get("fingerprint") == self._fingerprint and type(header.get("files")) is int
                and header.get("crc32") == zlib.crc32(memoryview(data)[end + 1:])):
            return
        lines = data.split(b"\n")
        entries: dict[str, Entry] = {}
        at = 1
        try:
            for _ in range(header["files"]):
                content_hash = lines[at].decode("ascii")
                meta = json.loads(lines[at + 1])
                views = lines[at + 2]
                specs = lines[at + 3:at + 3 + len(meta)]
                at += 3 + len(meta)
                if not _docs_ok(meta, specs):
                    continue  # a damaged entry: that file is parsed again
                entries[content_hash] = (meta, views, specs)
            references = header.get("references")
            if references is not None:
                digest, problems = references
                if not isinstance(digest, str) or not isinstance(problems, list):
                    raise ValueError("not a reference verdict")
                self._references = (digest, [_problem_from_json(p) for p in problems])
        except (TypeError, ValueError, IndexError, RecursionError):
            self._references = None
            return
        self._entries = entries

    def get(self, file: str, content_hash: str) -> ParsedFile | None:
        entry = self._entries.get(content_hash)
        if entry is None:
            return None
        meta, views, specs = entry
        try:
            docs = [(kind, name, index, digest, labels, spec, tuple(sensitive), lifecycle)
                    for (kind, name, index, digest, labels, sensitive, lifecycle), spec in zip(meta, specs)]
            view_text = views if isinstance(views, str) else views.decode()
        except (TypeError, ValueError):  # an entry of another shape: parse that file again
            del self._entries[content_hash]
            self._dirty = True
            return None
        self._used.add(content_hash)
        return ParsedFile(file, content_hash, docs, view_text)

    def put(self, parsed: ParsedFile) -> None:
        if parsed.problems or not isinstance(parsed.views, str):
            return
        self._entries[parsed.content_hash] = ([[*doc[:5], list(doc[6]), doc[7]] for doc in parsed.docs], parsed.views,
                                              [doc[5] for doc in parsed.docs])
        self._used.add(parsed.content_hash)
        self._dirty = True

    def reference_problems(self, tree_digest: str) -> list[PendingProblem] | None:
        """The reference problems last found for exactly this tree (same files, same contents)."""
        if self._references is not None and self._references[0] == tree_digest:
            return self._references[1]
        return None

    def put_reference_problems(self, tree_digest: str, problems: list[PendingProblem]) -> None:
        if self._references is None or self._references[0] != tree_digest:
            self._references = (tree_digest, problems)
            self._dirty = True

    def save(self) -> None:
        stale = set(self._entries) - self._used
        if not self._dirty and not stale:
            return
        for key in stale:
            del self._entries[key]
        references = None
        if self._references is not None:
            references = [self._references[0], [_problem_to_json(p) for p in self._references[1]]]
        try:
            # The user's cache directory, outside any work tree: nothing there for git to ignore.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a cache.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-cache-")
            try:
                body: list[bytes] = []
                for content_hash, (meta, views, specs) in self._entries.items():
                    body.append(content_hash.encode("ascii"))
                    body.append(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode())
                    body.extend(text.encode() if isinstance(text, str) else text for text in (views, *specs))
                crc = 0
                for line in body:
                    crc = zlib.crc32(b"\n", zlib.crc32(line, crc))
                header = {"format": FORMAT, "fingerprint": self._fingerprint, "files": len(self._entries),
                          "references": references, "crc32": crc}
                with os.fdopen(fd, "wb") as fh:
                    fh.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
                    for line in body:
                        fh.write(line + b"\n")
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, TypeError, ValueError):
            pass  # a cache that cannot be written only costs speed
        self._dirty = False
