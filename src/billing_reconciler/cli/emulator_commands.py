"""`billing-reconciler emulator serve`: the Metronome emulator over HTTP on uvicorn.

The bearer token comes from METRONOME_BEARER_TOKEN or `--token-file`, never from the command
line (where `ps` shows it), and is never printed. One line announces the URL once the port is
bound (with `--port 0`, the port the system picked); SIGINT or SIGTERM stop it cleanly (exit 0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
from pathlib import Path

import click

from .context import Settings, pass_settings
from .output import echo_json, fail, format_option

TOKEN_ENV = "METRONOME_BEARER_TOKEN"


@click.group("emulator")
def emulator() -> None:
    """The Metronome emulator, served over HTTP (try the workflow locally, test in CI)."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (printed on start).")
@click.option("--data", "data_dir", default=None, metavar="DIR", type=click.Path(file_okay=False),
              help="Directory of the emulator's database (kept across restarts); default: a new temporary directory.")
@click.option("--token-file", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help=f"File holding the bearer token clients must send (default: ${TOKEN_ENV}).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log one line per request (method, path, status; never headers).")
def serve(host: str, port: int, data_dir: str | None, token_file: str | None, access_log: bool) -> None:
    """Serve the Metronome emulator: the API's paths, request validation and response shapes."""
    token = _token(token_file)
    if data_dir is None:
        data_dir = tempfile.mkdtemp(prefix="metronome-emulator-")
    from ..emulator.served_state import ServedState
    from ..emulator.server import make_app

    try:
        state = ServedState(Path(data_dir))
    except OSError as exc:
        fail(f"cannot use --data {data_dir}: {exc.strerror or exc}")
    try:
        sock = _bind(host, port)
    except OSError as exc:
        state.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    stop = _StopRequest()  # a signal from now on stops the server cleanly, even before it runs
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Metronome emulator listening on http://{shown}:{bound} (data: {data_dir}); "
               "Ctrl-C to stop", nl=True)
    try:
        _run(make_app(state, token), sock, access_log, stop)
    finally:
        state.close()


def _token(token_file: str | None) -> str:
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"cannot read --token-file {token_file}: {exc.strerror or exc}")
        if not token:
            fail(f"--token-file {token_file} is empty; write the bearer token clients must send into it")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        fail(f"no bearer token: set {TOKEN_ENV} or pass --token-file FILE (never the token itself on the "
             "command line); clients must send it as `Authorization: Bearer <token>`")
    return token


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    sock.set_inheritable(True)
    return sock


class _StopRequest:
    """Records SIGINT/SIGTERM received before uvicorn installs its own handlers."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, _sig, _frame) -> None:
        self.requested = True


def _run(app, sock: socket.socket, access_log: bool, stop: _StopRequest) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn re-raises the signal that stopped it once shut down (SIGTERM would kill the
        # process with status -15): a signal here is the normal way to stop, so exit 0.
        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            self.should_exit = self.should_exit or stop.requested
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, log_level="info" if access_log else "warning", access_log=access_log,
                            lifespan="off", server_header=False, date_header=False)
    Server(config).run(sockets=[sock])


@emulator.command("add-credit-type")
@click.argument("name")
@click.option("--id", "credit_type_id", default=None, metavar="UUID",
              help="The credit type's id (default: a new one); e.g. the id it has in your Metronome account.")
@format_option
@pass_settings
def add_credit_type(settings: Settings, name: str, credit_type_id: str | None, fmt: str) -> None:
    """Make a custom credit type (pricing unit) in the embedded emulator of --store.

    Metronome's API only lists credit types (they are made in its UI), so manifests name them
    (`credit_type: NAME`) and plan checks the backend has them; this stands in for the UI."""
    from ..emulator.refusals import RequestRefused
    from ..service import add_credit_type as add
    from .store_commands import open_store

    store = open_store(settings)
    try:
        made = add(store, name, credit_type_id=credit_type_id)
    except RequestRefused as exc:
        fail(str(exc))
        raise
    if fmt == "json":
        echo_json(made)
    else:
        click.echo(f"Credit type {made['name']!r} made: {made['id']}.")


COMMANDS = [emulator]
