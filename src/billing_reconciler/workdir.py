"""The working directory `.billing-reconciler/` (store, parse cache, plan files put there): it
ignores itself in git, as `.pytest_cache` does, so `git add -A` never commits it."""

from __future__ import annotations

import contextlib
from pathlib import Path

STATE_DIR = ".billing-reconciler"
GITIGNORE = "# Created by billing-reconciler: working files (store, cache, plans), never committed.\n*\n"


def make_ignored_dirs(directory: str | Path) -> Path:
    """Create `directory` (and its parents); the top-most directory this call creates gets a
    `.gitignore` holding `*`. A directory that already exists is left as it is."""
    directory = Path(directory)
    missing = directory
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created:
        write_gitignore(missing)
    return directory


def write_gitignore(directory: str | Path) -> None:
    """`directory/.gitignore` with `*`, unless it has one already (the user's own is kept)."""
    path = Path(directory) / ".gitignore"
    if not path.exists():
        with contextlib.suppress(OSError):  # a read-only tree: ignoring is a courtesy, not a need
            path.write_text(GITIGNORE)


def ignore_state_dir(root: str | Path = ".") -> Path:
    """`.billing-reconciler/` under `root`, created if needed, with its `.gitignore`."""
    directory = Path(root) / STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    write_gitignore(directory)
    return directory
