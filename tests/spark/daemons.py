"""Spark daemons for the tests, started from the pyspark pip package's own scripts: a standalone
master and worker (`spark-class org.apache.spark.deploy...`) and a Spark Connect server
(`spark-submit --class ...SparkConnectServer`), each on 127.0.0.1 and free ports, each in its own
process group so that stopping it stops the JVMs it launched (a worker's executors) too.

Every JVM a test starts, directly or through the CLI, carries a mark in its environment (one per
daemon group or CLI run: `new_mark()`): `marked(mark)` lists those still alive, which is how
the tests prove no JVM is left behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .conftest import spark_unavailable

MARK_VAR = "BILLING_RECONCILER_TEST_JVM"
MARK = uuid.uuid4().hex
READY_SECONDS = 120  # a loaded two-core machine starts a JVM in 5-30 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    return free_port()


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError:
        spark_unavailable("pyspark is not installed (pip install -e '.[test]')")
    return Path(pyspark.__file__).parent


def new_mark() -> str:
    return uuid.uuid4().hex


def java_env(mark: str = MARK, **extra: str) -> dict[str, str]:
    """The environment of the daemons and of the CLI runs against them: loopback only, the JVM's
    quick compiler (short runs), and `mark`."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):  # as events/spark.py finds Java
        spark_unavailable("no Java for Spark (install openjdk-17-jre-headless or set JAVA_HOME)")
    return {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
            "_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC", MARK_VAR: mark, **extra}


def marked(mark: str = MARK) -> list[int]:
    """Pids of live processes (of this user) whose environment holds `mark`."""
    needle = f"{MARK_VAR}={mark}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:  # gone, or not ours
                continue
    return pids


@contextmanager
def daemon(command: list[str], log: Path, ready: str, env: dict[str, str]):
    """Run `command` (a JVM) until the block ends; ready once `ready` appears in its log."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                spark_unavailable(f"{Path(command[0]).name} {command[1]} did not start:\n{tail}")
            time.sleep(0.5)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group (the JVM's shutdown hooks run: a worker kills its executors),
    SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def standalone_cluster(workdir: Path, mark: str = MARK):
    """A master and one worker (1 core, 1 GB): yields the master URL spark://127.0.0.1:PORT."""
    home = spark_home()
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    # No REST submission server (it would listen on 6066 whatever the ports chosen here).
    env = java_env(mark, SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false")
    master = [str(home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(free_port())]
    worker = [str(home / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
              "--port", str(free_port()), "--webui-port", str(free_port()), "--cores", "1", "--memory", "1g",
              "--work-dir", str(workdir / "work")]
    with daemon(master, workdir / "master.log", f"Starting Spark master at {url}", env), \
            daemon(worker, workdir / "worker.log", "Successfully registered with master", env):
        yield url


@contextmanager
def connect_server(workdir: Path, mark: str = MARK):
    """A Spark Connect server (local mode, one core): yields sc://127.0.0.1:PORT."""
    home = spark_home()
    jar = next((home / "jars").glob("spark-connect_*.jar"), None)
    if jar is None:
        spark_unavailable(f"pyspark at {home} ships no spark-connect jar")
    port = free_port()
    command = [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--master", "local[1]", "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
               "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
               "--conf", "spark.sql.shuffle.partitions=1", str(jar)]
    with daemon(command, workdir / "connect.log", "Spark Connect server started", java_env(mark)):
        yield f"sc://127.0.0.1:{port}"
