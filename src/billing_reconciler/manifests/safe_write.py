"""Write files under one directory without ever leaving it: no symlink is followed.

`import` names files after store keys, which come from outside (a store another tool or person
filled): a key like `/tmp/x` or `../../x` would have named a file outside the directory, and a
symlink planted in the directory (`imported/customers/acme.yaml -> ~/.bashrc`) would have been
followed. Every step here is opened relative to its parent's descriptor with O_NOFOLLOW, so
neither a path nor a later-swapped symlink can lead elsewhere.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)


class UnsafePath(Exception):
    """A write that would leave the directory or go through a symlink."""


def safe_name(name: str) -> bool:
    """One plain path component: no separator, not '.' or '..', nothing hidden, no NUL."""
    return (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and not name.startswith(".") and len(name.encode()) <= 200)


def _open_dir(name: str, parent_fd: int | None, shown: Path) -> int:
    try:
        if parent_fd is None:
            Path(name).mkdir(parents=True, exist_ok=True)
        else:
            try:
                os.mkdir(name, dir_fd=parent_fd)
            except FileExistsError:
                pass
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            raise UnsafePath(f"{shown} is a symlink or not a directory; refusing to write through it") from None
        raise


def write_under(root: Path, parts: tuple[str, ...], text: str) -> Path:
    """Write `text` to root/parts[0]/.../parts[-1], creating directories, following no symlink
    at or below `root` (root itself included)."""
    for part in parts:
        if not safe_name(part):
            raise UnsafePath(f"{part!r} is not a plain file name")
    fd = _open_dir(str(root), None, root)
    try:
        shown = root
        for part in parts[:-1]:
            shown = shown / part
            new = _open_dir(part, fd, shown)
            os.close(fd)
            fd = new
        shown = shown / parts[-1]
        try:
            out = os.open(parts[-1], _FILE_FLAGS, 0o666, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise UnsafePath(f"{shown} is a symlink or not a regular file; refusing to write through it") from None
            raise
        with os.fdopen(out, "w", encoding="utf-8") as fh:
            fh.write(text)
        return shown
    finally:
        os.close(fd)
