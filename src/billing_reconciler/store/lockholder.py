"""Who holds a SQLite store's lock when it is not an apply of ours: the processes that have the
database file open, read from /proc (Linux). SQLite itself does not say who holds a lock."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def processes_with_open(path: str | Path, *, limit: int = 3) -> list[str]:
    """'pid 4242 (sqlite3 state.db)' for each other process holding `path` (or its -wal/-shm) open."""
    try:
        target = Path(path).resolve()
    except OSError:
        return []
    wanted = {str(target), f"{target}-wal", f"{target}-shm", f"{target}-journal"}
    found: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                found.append(f"pid {entry.name} ({_command(entry)})")
                if len(found) >= limit:
                    break
    return found


def _command(entry: Path) -> str:
    with contextlib.suppress(OSError):
        argv = [a for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        if argv:
            words = [" ".join(a.decode(errors="replace").split()) for a in argv]
            text = " ".join([Path(words[0]).name, *words[1:]])  # `python3 ...`, not the interpreter's path
            return text if len(text) <= 300 else text[:297] + "..."
    with contextlib.suppress(OSError):
        return (entry / "comm").read_text().strip()
    return "unknown program"


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
