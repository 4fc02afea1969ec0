"""Read one manifest file: a regular file inside the tree, never through a symlink.

A symlink in `manifests/` pointing outside the tree was followed (and a validation error then
quoted the outside file's content into a pull-request comment); a dangling symlink or a symlink
loop was a traceback; a directory symlink was silently skipped, so the objects behind it looked
deleted and `plan --prune` would archive them; a FIFO named `x.yaml` hung the run. Each is now a
located error for that file, and the run fails: skipping it instead would make its objects look
removed. (Only the root passed as --manifests may itself be a symlink: that is the user's choice.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# The largest manifest file read. Far above any real one (the 10,000-customer benchmark account
# is 5 MB in 101 files), and small enough that a cold load of one stays within seconds.
MAX_FILE_BYTES = 16 * 1024 * 1024

_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class Unreadable(Exception):
    """Why a manifest file is refused, phrased with the fix."""


def read_manifest(path: Path) -> bytes:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise Unreadable(f"is a symlink (to {target}); manifests are read only from regular files inside the "
                         "manifests directory: replace the link with the file itself")
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("is not a regular file (a device, FIFO or socket); remove it from the manifests directory")
        if info.st_size > MAX_FILE_BYTES:
            raise Unreadable(f"is {info.st_size / 1048576:.1f} MB, larger than the {MAX_FILE_BYTES // 1048576} MB "
                             "a manifest file may be; split it into several files")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(f"is larger than the {MAX_FILE_BYTES // 1048576} MB a manifest file may be; "
                         "split it into several files")
    return data
