"""A real, throw-away PostgreSQL server for tests: no mocks, no network.

Fixtures (register them in ``conftest.py`` by importing them):

``postgres_server`` (session scope)
    Runs ``initdb`` into a fresh directory under /tmp and ``pg_ctl start`` with the
    server listening only on 127.0.0.1 (a free port) and on a unix socket inside that
    directory. Yields a :class:`PostgresServer`; at the end of the session the server is
    stopped with ``pg_ctl stop -m immediate`` and the directory is deleted (an ``atexit``
    hook does the same if the session is torn down abnormally). Tests that use it are
    skipped when no PostgreSQL binaries are installed, and fail instead when ``CI=true``.

``postgres_url`` (function scope)
    Creates a fresh, uniquely named database on that server and returns its SQLAlchemy
    URL, ``postgresql+psycopg://postgres@127.0.0.1:PORT/DBNAME``. The database is dropped
    again after the test.

Binaries: ``initdb`` on PATH, else the highest ``/usr/lib/postgresql/*/bin``. As root
(initdb refuses to run as root) the server runs as the ``postgres`` system user, or as a
``pgtest`` system user created on demand, via ``runuser -u USER --``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 60  # seconds for pg_ctl start and for the readiness check
_FALLBACK_USER = "pgtest"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Settings for a disposable server: durability off (faster), nothing outside the temp dir.
_SERVER_SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


class PostgresUnavailable(Exception):
    """No PostgreSQL installation was found (tests using the fixtures are skipped)."""


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl: initdb on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(os.path.realpath(on_path)).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = Path(initdb).parent
        version = bindir.parent.name
        key = tuple(int(part) for part in version.split(".") if part.isdigit())
        if (bindir / "pg_ctl").exists():
            candidates.append((key, bindir))
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL server binaries not found (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
            "install them, e.g. `apt-get install postgresql`")
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, _FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    commands = [["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
                ["adduser", "-S", "-D", "-H", _FALLBACK_USER]]  # busybox/alpine
    errors = []
    for command in commands:
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        try:  # another process may have created it concurrently, so check either way
            return pwd.getpwnam(_FALLBACK_USER)
        except KeyError:
            errors.append(f"{command[0]}: {result.stderr.strip()}")
    raise RuntimeError(f"running as root and could not create an unprivileged user for PostgreSQL: {errors}")


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Fail early and clearly if `user` cannot reach `path` (e.g. under a 0700 directory)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise RuntimeError(f"{parent} is not traversable by user {user.pw_name!r}; "
                               "the PostgreSQL test directory must be reachable by it")


def _clean_env() -> dict[str, str]:
    """Our environment minus libpq/PG* variables that could point commands at another server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@dataclass
class PostgresServer:
    """A running throw-away server. Connect as superuser ``postgres`` without a password."""

    bindir: Path
    basedir: Path  # temp dir: holds data/, the unix socket and server.log
    port: int = 0
    host: str = HOST
    user: str = SUPERUSER
    run_as: pwd.struct_passwd | None = None
    _running: bool = field(default=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.basedir

    @property
    def logfile(self) -> Path:
        return self.basedir / "server.log"

    # -- addresses --------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL: postgresql+psycopg://postgres@127.0.0.1:PORT/DBNAME."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq conninfo string for ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname} connect_timeout=10"

    # -- databases --------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (lower-case identifier, <= 63 chars); returns its SQLAlchemy URL."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*, at most 63 characters")
        from psycopg import sql

        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS `name`, disconnecting any sessions still using it."""
        from psycopg import sql

        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _execute(self, statement) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(statement)

    # -- lifecycle --------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        kwargs = {}
        if self.run_as is not None:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
            else:  # no util-linux: drop privileges in the child directly
                kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        result = subprocess.run(command, cwd=self.basedir, env=_clean_env(), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}\n"
                               f"{result.stdout}{result.stderr}{self._log_tail()}")
        return result

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.logfile.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- server.log ---\n" + "\n".join(text)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", SUPERUSER,
                  "-E", "UTF8", "--locale=C", "--no-sync", timeout=120)
        settings = {**_SERVER_SETTINGS, "unix_socket_directories": f"'{self.socket_dir}'"}
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# throw-away test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        last_error: Exception | None = None
        for _attempt in range(5):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            try:
                self._running = True  # from here on a stop may be needed
                self._run("pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
                          "-o", f"-p {self.port}", "-w", "-t", str(START_TIMEOUT),
                          timeout=START_TIMEOUT + 10)
                break
            except RuntimeError as exc:
                last_error = exc
                self.stop(remove=False)
                if "could not bind" not in str(exc) and "already in use" not in str(exc):
                    raise
        else:
            raise RuntimeError(f"could not start PostgreSQL on a free port: {last_error}")
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.dsn(), autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not accept connections: {exc}{self._log_tail()}") from exc
                time.sleep(0.1)

    def stop(self, remove: bool = True) -> None:
        """Stop the server (immediate mode) and, if `remove`, delete its directory. Idempotent."""
        try:
            if self._running and (self.datadir / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w", timeout=60)
                except Exception:
                    self._kill_postmaster()
            self._running = False
        finally:
            if remove:
                atexit.unregister(self.stop)
                shutil.rmtree(self.basedir, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Backstop when pg_ctl fails: SIGQUIT (immediate shutdown), then SIGKILL."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)


def start_server() -> PostgresServer:
    """Start a throw-away server; the caller must call ``.stop()`` (an atexit hook is the backstop).

    Raises PostgresUnavailable if no PostgreSQL binaries are installed.
    """
    bindir = find_bindir()
    run_as = _server_user()
    # Under /tmp, not pytest's 0700 tmp_path, so the server user can reach it; keep it short
    # because unix socket paths are limited to ~107 bytes.
    parent = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK) else None
    basedir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=parent))
    server = PostgresServer(bindir=bindir, basedir=basedir, run_as=run_as)
    atexit.register(server.stop)
    try:
        os.chmod(basedir, 0o755)
        if run_as is not None:
            os.chown(basedir, run_as.pw_uid, run_as.pw_gid)
            _check_traversable(basedir, run_as)
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def in_ci() -> bool:
    """CI=true (as the CLI reads it: 1, true or yes): a run whose green must mean everything ran."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
               for name in ("CI", "BILLING_RECONCILER_REQUIRE_POSTGRES"))


def unavailable(reason: str) -> None:
    """Skip a PostgreSQL test on a developer's machine without PostgreSQL; in CI, fail it: a
    green CI run must not hide that half the store tests never ran."""
    if in_ci():
        pytest.fail(f"CI=true but the PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (skips the test if PostgreSQL is not
    installed; fails it under CI=true)."""
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_database(server: PostgresServer, label: str = "db") -> Iterator[str]:
    """Create a uniquely named database (named after `label`), yield its URL, then drop it."""
    stem = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:10]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        try:
            server.drop_database(name)
        except Exception:  # the whole server is deleted at the end of the session anyway
            pass


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL of a fresh database created for this test (dropped afterwards)."""
    with fresh_database(postgres_server, request.node.name) as url:
        yield url
