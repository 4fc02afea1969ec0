"""Parse cache: each cleanly validated file's ParsedFile, keyed by path and content hash.

The cache key also covers the source of this package and of the modules its verdicts depend on,
so a code change never serves a stale verdict. Only files without problems are cached (broken
files are re-read to locate their problems anyway). Specs are stored pickled per document and
only unpickled when read, so loading the cache is mostly copying bytes.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from ..workdir import make_ignored_dirs
from .errors import PendingProblem
from .parse import ParsedFile

_HERE = Path(__file__).parent
_ALSO_DEPENDS_ON = ("canonical.py", "money.py", "timeutil.py", "specform.py")
FORMAT = 2


def _code_fingerprint() -> str:
    h = hashlib.sha256(str(FORMAT).encode())
    sources = sorted(_HERE.glob("*.py")) + [_HERE.parent / name for name in _ALSO_DEPENDS_ON]
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class ManifestCache:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fingerprint = _code_fingerprint()
        self._entries: dict[str, ParsedFile] = {}
        # The cross-object verdict for one whole tree: (tree digest, its reference problems).
        self._references: tuple[str, list[PendingProblem]] | None = None
        self._used: set[str] = set()
        self._dirty = False
        self._load()

    def _load(self) -> None:
        # Unpickling allocates many small objects; the cyclic GC would rescan them all repeatedly.
        enabled = gc.isenabled()
        gc.disable()
        try:
            with self.path.open("rb") as fh:
                data = pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError,
                IndexError, KeyError):
            return
        finally:
            if enabled:
                gc.enable()
        if isinstance(data, dict) and data.get("fingerprint") == self._fingerprint:
            self._entries = data["files"]
            self._references = data.get("references")

    def get(self, file: str, content_hash: str) -> ParsedFile | None:
        entry = self._entries.get(file)
        if entry is None or entry.content_hash != content_hash:
            return None
        self._used.add(file)
        return entry

    def put(self, parsed: ParsedFile) -> None:
        if parsed.problems:
            return
        self._entries[parsed.file] = parsed
        self._used.add(parsed.file)
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
        for file in stale:
            del self._entries[file]
        try:
            make_ignored_dirs(self.path.parent)  # a new .billing-reconciler/ ignores itself in git
            # Write then rename: a reader never sees half a cache.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-cache-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump({"fingerprint": self._fingerprint, "files": self._entries,
                                 "references": self._references}, fh,
                                protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # a cache that cannot be written only costs speed
        self._dirty = False
