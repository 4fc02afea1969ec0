"""Tests for the throw-away PostgreSQL fixtures in tests/pgserver.py (real server, no mocks)."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors

from . import pgserver
from .pgserver import PostgresServer, fresh_database

pytestmark = pytest.mark.postgres


def _dbname(url: str) -> str:
    return sa.make_url(url).database


def test_url_shape(postgres_server: PostgresServer, postgres_url: str) -> None:
    assert re.fullmatch(rf"postgresql\+psycopg://postgres@127\.0\.0\.1:{postgres_server.port}/t_\w+", postgres_url)
    assert postgres_server.url("x") == f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/x"
    assert _dbname(postgres_url).startswith("t_test_url_shape_")


def test_server_files_and_owner(postgres_server: PostgresServer) -> None:
    assert (postgres_server.datadir / "PG_VERSION").is_file()
    assert str(postgres_server.basedir).startswith("/tmp/") or not Path("/tmp").is_dir()
    assert (postgres_server.socket_dir / f".s.PGSQL.{postgres_server.port}").exists()
    owner = postgres_server.datadir.stat().st_uid
    if os.geteuid() == 0:
        assert owner != 0, "initdb must not run as root"
        assert postgres_server.run_as is not None and owner == postgres_server.run_as.pw_uid
    else:
        assert owner == os.geteuid()


def test_psycopg_fresh_database(postgres_server: PostgresServer, postgres_url: str) -> None:
    dbname = _dbname(postgres_url)
    with psycopg.connect(postgres_server.dsn(dbname)) as conn:
        row = conn.execute("SELECT current_database(), current_user, "
                           "pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()").fetchone()
        assert row == (dbname, "postgres", "UTF8")
        conn.execute("CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO item (name) VALUES (%s), (%s)", ("ä", "b"))
        conn.commit()
    # The unix socket in the temp dir works too.
    with psycopg.connect(host=str(postgres_server.socket_dir), port=postgres_server.port,
                         user="postgres", dbname=dbname) as conn:
        assert conn.execute("SELECT name FROM item ORDER BY id").fetchall() == [("ä",), ("b",)]


def test_sqlalchemy_fresh_database(postgres_url: str) -> None:
    metadata = sa.MetaData()
    invoice = sa.Table("invoice", metadata,
                       sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("amount", sa.Numeric(12, 2), nullable=False))
    engine = sa.create_engine(postgres_url)
    try:
        assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(invoice.insert(), [{"amount": "1.50"}, {"amount": "2.25"}])
        with engine.connect() as conn:
            assert str(conn.execute(sa.select(sa.func.sum(invoice.c.amount))).scalar_one()) == "3.75"
        assert sa.inspect(engine).get_table_names() == ["invoice"]
    finally:
        engine.dispose()


def test_two_databases_are_isolated(postgres_server: PostgresServer, postgres_url: str) -> None:
    with fresh_database(postgres_server, "second") as other_url:
        assert _dbname(other_url) != _dbname(postgres_url)
        engine_a, engine_b = sa.create_engine(postgres_url), sa.create_engine(other_url)
        try:
            with engine_a.begin() as conn:
                conn.execute(sa.text("CREATE TABLE shared_name (v text)"))
                conn.execute(sa.text("INSERT INTO shared_name VALUES ('a')"))
            assert sa.inspect(engine_b).get_table_names() == []
            with engine_b.begin() as conn:
                conn.execute(sa.text("CREATE TABLE shared_name (v text)"))
                conn.execute(sa.text("INSERT INTO shared_name VALUES ('b')"))
            with engine_a.connect() as conn:
                assert conn.execute(sa.text("SELECT v FROM shared_name")).scalars().all() == ["a"]
            with engine_b.connect() as conn:
                assert conn.execute(sa.text("SELECT v FROM shared_name")).scalars().all() == ["b"]
        finally:
            engine_a.dispose()
            engine_b.dispose()
    # The helper dropped the second database again.
    with psycopg.connect(postgres_server.dsn()) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_dbname(other_url),)).fetchone() is None


@pytest.mark.parametrize("case", ["first", "second"])
def test_each_test_gets_an_empty_database(postgres_url: str, case: str) -> None:
    # Whichever case runs second would see the other's table if databases were shared.
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (v text)"))
    finally:
        engine.dispose()


def test_advisory_xact_lock(postgres_server: PostgresServer, postgres_url: str) -> None:
    dsn = postgres_server.dsn(_dbname(postgres_url))
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as other:
        holder.execute("SELECT pg_advisory_xact_lock(42)")  # held until holder's transaction ends
        assert other.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (False,)
        assert other.execute("SELECT pg_try_advisory_xact_lock(43)").fetchone() == (True,)
        other.rollback()
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(errors.LockNotAvailable):
            other.execute("SELECT pg_advisory_xact_lock(42)")  # blocks, then times out
        other.rollback()
        holder.commit()  # releases the transaction-level lock
        assert other.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (True,)
        other.commit()


def test_create_database_rejects_bad_names(postgres_server: PostgresServer) -> None:
    for bad in ["", "Upper", "has space", "x;drop", "1abc", "a" * 64]:
        with pytest.raises(ValueError):
            postgres_server.create_database(bad)


def test_start_and_stop_leave_nothing_behind() -> None:
    """A second, independent server: stop() kills it and removes its directory."""
    try:
        server = pgserver.start_server()
    except pgserver.PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
    finally:
        server.stop()
    assert not server.basedir.exists()
    deadline = time.monotonic() + 10  # the pid file goes a moment before the process exits
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    with socket.socket() as sock:
        assert sock.connect_ex((pgserver.HOST, server.port)) != 0
    server.stop()  # idempotent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an exited but not yet reaped process (zombie) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def test_missing_binaries_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgserver.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgserver.glob, "glob", lambda pattern: [])
    with pytest.raises(pgserver.PostgresUnavailable, match="initdb"):
        pgserver.find_bindir()
