"""The command line: parse options, call one library function, render, set the exit code.

Each command lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

import click

from ..store.urls import display, scrub
from .context import Settings, pass_settings  # noqa: F401 - re-exported for command modules

EXIT_CODES_HELP = """Global options may also follow the command: `billing-reconciler plan --store URL`.

\b
Exit codes:
  0  success (for `plan --detailed-exitcode`: no changes)
  1  error: invalid manifests, refused plan, failed apply
  2  `plan --detailed-exitcode` only: there are changes to apply
"""


class _Group(click.Group):
    """Usage errors exit 1, not click's 2 (2 is kept for `plan --detailed-exitcode`: changes).

    Database errors (store unreachable, wrong password, missing database) become one line
    naming the store, not a traceback: they are bad input, not bugs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, args))

    def make_context(self, *args, **kwargs):  # noqa: ANN002, ANN003 - click's own signature
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:  # a bad global option
            exc.exit_code = 1
            raise

    def invoke(self, ctx: click.Context):
        from ..apply.backends import BackendError
        from ..events.engine import EventsError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # unknown command, bad option or value, missing argument
            exc.exit_code = 1  # click's message is kept; only the code changes
            raise
        except EventsError as exc:  # the events file: busy, unreadable, not configured
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except BackendError as exc:  # the remote API: refused token, no answer, refused request
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - filtered to store and database errors below
            from ..store.store import StoreError

            if isinstance(exc, StoreError):  # a store this release must not use (newer, damaged, moved)
                click.echo(f"Error: {exc}", err=True)
                ctx.exit(1)
            if not _is_database_error(exc):
                raise
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            where = display(settings.store) if settings else "the store"
            reason = scrub(_first_line(exc), settings.store) if settings else _first_line(exc)
            click.echo(f"Error: the store {where} failed: {reason}\n"
                       "Check the --store URL / BILLING_RECONCILER_STORE, that the server is up, and the "
                       "credentials; then run the command again (nothing was changed).", err=True)
            ctx.exit(1)


def _option_names(command: click.Command, ctx: click.Context) -> set[str]:
    """Every option name `command` (and, for a group, any command under it) defines."""
    names = {n for p in command.params if isinstance(p, click.Option) for n in (*p.opts, *p.secondary_opts)}
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                names |= _option_names(sub, ctx)
    return names


def _takes_value(option: click.Option, token: str) -> bool:
    return not (option.is_flag or option.count) and "=" not in token


def hoist_global_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """Global options written after the command (`plan --store URL`, DESIGN §6) moved before it,
    so the group's one definition of each parses them. An option the command defines itself under
    the same name stays the command's; nothing after `--` moves. Written after the command, a
    global option wins over the same one before it (click keeps the last value)."""
    options = {n: p for p in group.params if isinstance(p, click.Option) for n in (*p.opts, *p.secondary_opts)}
    i = 0
    while i < len(args):  # skip the options before the command to find it
        token = args[i]
        if token == "--" or not token.startswith("-"):
            break
        option = options.get(token.split("=", 1)[0])
        i += 2 if option is not None and _takes_value(option, token) else 1
    if i >= len(args) or args[i] == "--":
        return args
    command = group.get_command(ctx, args[i])
    if command is None:
        return args
    own = _option_names(command, ctx)
    own_values = {n for p in command.params if isinstance(p, click.Option) and not (p.is_flag or p.count)
                  for n in (*p.opts, *p.secondary_opts)}
    moved: list[str] = []
    rest: list[str] = []
    j = i + 1
    while j < len(args):
        token = args[j]
        name = token.split("=", 1)[0]
        if token == "--":
            rest += args[j:]
            break
        if name in options and name not in own:
            width = 2 if _takes_value(options[name], token) else 1
            if j + width > len(args):
                raise click.BadOptionUsage(name, f"Option '{name}' requires an argument.", ctx)
            moved += args[j:j + width]
        else:
            width = 2 if name in own_values and "=" not in token else 1
            rest += args[j:j + width]
        j += width
    return args[:i] + moved + [args[i]] + rest


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3")


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


@click.group(cls=_Group, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", envvar="BILLING_RECONCILER_STORE", default=None, metavar="URL",
              help="Store URL (default sqlite:///.billing-reconciler/state.db; or postgresql+psycopg://...). "
                   "Env: BILLING_RECONCILER_STORE.")
@click.option("--manifests", "manifests_dir", envvar="BILLING_RECONCILER_MANIFESTS", default="manifests",
              show_default=True, metavar="DIR", help="Directory of YAML manifests.")
@click.option("--events-db", envvar="BILLING_RECONCILER_EVENTS_DB", default=None, metavar="PATH",
              help="The DuckDB file usage events live in (default: events.duckdb beside a SQLite store; "
                   "required with a PostgreSQL store). Env: BILLING_RECONCILER_EVENTS_DB.")
@click.option("--events-memory", envvar="BILLING_RECONCILER_EVENTS_MEMORY", default=None, metavar="SIZE",
              help="DuckDB's memory limit for events (default 2GB; e.g. 512MB, 8GB); past it, it spills to disk. "
                   "Env: BILLING_RECONCILER_EVENTS_MEMORY.")
@click.option("--backend", "backend_name", envvar="BILLING_RECONCILER_BACKEND", default="embedded", show_default=True,
              type=click.Choice(["embedded", "metronome"]),
              help="Where objects live: the emulator embedded in the store, or the Metronome API through its SDK "
                   "(token from METRONOME_BEARER_TOKEN, endpoint from METRONOME_BASE_URL). "
                   "Env: BILLING_RECONCILER_BACKEND.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), envvar="BILLING_RECONCILER_ENGINE", default="duckdb",
              show_default=True, help="What runs the rating aggregation of `invoices` and `plan --usage`: DuckDB here, or Apache Spark "
                                      "(needs the [spark] extra and Java 17). Env: BILLING_RECONCILER_ENGINE.")
@click.option("--spark-url", envvar="BILLING_RECONCILER_SPARK_URL", default=None, metavar="URL",
              help="With --engine spark: a cluster master (spark://host:7077, yarn, k8s://...) or a Spark Connect "
                   "endpoint (sc://host:15002); default local[*]. Env: BILLING_RECONCILER_SPARK_URL.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the manifest parse cache.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="No colour, even on a terminal.")
@click.version_option(package_name="billing-reconciler")
@click.pass_context
def main(ctx: click.Context, store: str | None, manifests_dir: str, events_db: str | None, events_memory: str | None,
         backend_name: str, engine: str, spark_url: str | None, no_cache: bool, no_color: bool) -> None:
    """Billing configuration as code: manifests in git, reviewed plans, safe applies."""
    if engine == "spark" and spark_url:  # a malformed URL is one line before anything starts
        from ..events.spark import check_url

        check_url(spark_url)
    ctx.obj = Settings(store_url=store, manifests_dir=manifests_dir, use_cache=not no_cache, no_color=no_color,
                       events_db=events_db, events_memory=events_memory, backend_name=backend_name, engine=engine,
                       spark_url=spark_url)


# Command modules; each exports COMMANDS (a list of click commands). A module that is not
# there yet is skipped, so features can land one at a time.
COMMAND_MODULES = ("validate", "schemas", "store_commands", "rating_commands", "workflow_commands",
                   "emulator_commands", "migrate_command")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)
            command.epilog = "\n\n".join(filter(None, [command.epilog, _global_options_note()]))


def _global_options_note() -> str:
    """Each command's help names the global options it also accepts (from their one definition)."""
    names = ", ".join(p.opts[0] for p in main.params if isinstance(p, click.Option) and p.opts[0].startswith("--")
                      and p.opts[0] != "--version")
    return f"Global options are accepted here too ({names}); see `billing-reconciler --help`."


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
