"""Parse cache: validated manifests per file, keyed by the file's content hash.

The cache key also covers the source of the modules that decide what a valid manifest is, so a
code change never serves a stale verdict. Only files that validated cleanly are cached.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from .document import Manifest

_RULE_MODULES = ("model.py", "types.py", "rules.py", "validate.py", "document.py", "../canonical.py")


def _code_fingerprint() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in _RULE_MODULES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


class ManifestCache:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fingerprint = _code_fingerprint()
        self._entries: dict[str, tuple[str, list[Manifest]]] = {}
        self._used: set[str] = set()
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with self.path.open("rb") as fh:
                data = pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
            return
        if isinstance(data, dict) and data.get("fingerprint") == self._fingerprint:
            self._entries = data["files"]

    def get(self, file: str, content_hash: str) -> list[Manifest] | None:
        entry = self._entries.get(file)
        if entry is None or entry[0] != content_hash:
            return None
        self._used.add(file)
        return entry[1]

    def put(self, file: str, content_hash: str, manifests: list[Manifest]) -> None:
        self._entries[file] = (content_hash, manifests)
        self._used.add(file)
        self._dirty = True

    def save(self) -> None:
        stale = set(self._entries) - self._used
        if not self._dirty and not stale:
            return
        for file in stale:
            del self._entries[file]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a cache.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-cache-")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump({"fingerprint": self._fingerprint, "files": self._entries}, fh,
                            protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs speed
        self._dirty = False
