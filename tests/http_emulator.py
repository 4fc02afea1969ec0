"""The Metronome emulator over real HTTP, for tests.

Two ways to run it:

`start_emulator(data_dir)` (and the function-scoped fixture `emulator_server` in conftest.py)
runs `billing-reconciler emulator serve --port 0 --data DATA_DIR` as a subprocess of the real CLI,
with a fresh token in its environment, reads the URL it prints, waits until it answers, and
yields a `ServedEmulator`; on exit it stops the server with SIGTERM (SIGKILL after 10 s)::

    with start_emulator(tmp_path / "data") as served:
        base_url, token, data_dir = served          # it unpacks as a 3-tuple
        httpx.get(f"{base_url}/v1/customers", headers=served.headers)
        served.output()                             # what the server printed (stdout + stderr)

    def test_x(emulator_server):                     # the same, as a fixture
        base_url, token, data_dir = emulator_server

Pass the same `data_dir` again to restart on the same objects; `token=` to choose the token,
`token_file=` to hand it over through `--token-file` instead of METRONOME_BEARER_TOKEN.

`serve_in_thread(app)` serves an ASGI app (e.g. `make_app(ServedState(dir), token)` wrapped in
fault-injecting middleware) with uvicorn in a thread of the test process, on a free port, and
yields its base URL; `served_app(data_dir, token)` builds that app.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .conftest import cli_command

URL_LINE = re.compile(r"listening on (http://\S+)")
START_TIMEOUT = 60.0  # seconds: the machine is shared; a cold start imports and migrates


@dataclass
class ServedEmulator:
    base_url: str
    token: str
    data_dir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    returncode: int | None = field(default=None)

    def __iter__(self):
        return iter((self.base_url, self.token, self.data_dir))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, **kwargs)

    def output(self) -> str:
        """Everything the server process printed so far (stdout and stderr together)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def new_token() -> str:
    return "test-" + secrets.token_urlsafe(24)


@contextlib.contextmanager
def start_emulator(data_dir: Path, *, token: str | None = None, token_file: Path | None = None,
                   args: tuple[str, ...] = ()) -> Iterator[ServedEmulator]:
    """`emulator serve` as a subprocess on a free port; see the module docstring."""
    data_dir = Path(data_dir)
    token = token or new_token()
    env = {k: v for k, v in os.environ.items() if k != "METRONOME_BEARER_TOKEN"}
    env["NO_COLOR"] = "1"
    command = [*cli_command(), "emulator", "serve", "--port", "0", "--data", str(data_dir), *args]
    if token_file is not None:
        Path(token_file).write_text(token + "\n")
        command += ["--token-file", str(token_file)]
    else:
        env["METRONOME_BEARER_TOKEN"] = token
    log_path = data_dir.parent / f"{data_dir.name}.{os.getpid()}.{time.monotonic_ns()}.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    served = ServedEmulator("", token, data_dir, process, log_path)
    try:
        served.base_url = _wait_for_url(served)
        _wait_until_answering(served)
        yield served
    finally:
        served.returncode = stop(process)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if it has not exited after 10 s; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _wait_for_url(served: ServedEmulator) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = URL_LINE.search(served.output())
        if found:
            return found.group(1)
        if served.process.poll() is not None:
            raise RuntimeError(f"emulator serve exited {served.process.returncode}:\n{served.output()}")
        time.sleep(0.05)
    raise RuntimeError(f"emulator serve printed no URL in {START_TIMEOUT} s:\n{served.output()}")


def _wait_until_answering(served: ServedEmulator) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(f"{served.base_url}/v1/credit-types/list", headers=served.headers, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"emulator serve does not answer at {served.base_url}:\n{served.output()}")
        time.sleep(0.05)


# --- in a thread -----------------------------------------------------------------------------------

def served_app(data_dir: Path, token: str):
    """The emulator's ASGI app over a data directory (what `emulator serve` runs)."""
    from billing_reconciler.emulator.served_state import ServedState
    from billing_reconciler.emulator.server import make_app

    return make_app(ServedState(Path(data_dir)), token)


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1 and a free port; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"emulator:{port}")
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-thread server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        state = getattr(getattr(app, "state", None), "emulator", None)
        if state is not None:
            state.close()
