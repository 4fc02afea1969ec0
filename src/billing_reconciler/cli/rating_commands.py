"""`ingest` and `invoices`: usage events into the store, invoices out of the rating engine."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import datetime

import click

from ..bounds import LAST_YEAR
from ..canonical import dumps
from ..timeutil import parse_timestamp, utc_now
from .context import Settings, pass_settings
from .output import echo_json, fail, format_option


def _timestamp(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_timestamp(value if "T" in value else value + "T00:00:00Z")
    except ValueError:
        from ..manifests.types import calendar_problem

        raise click.BadParameter(calendar_problem(value) or f"{value!r} is not a timestamp like 2024-11-01T00:00:00Z") \
            from None


@click.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--input-format", "input_fmt", type=click.Choice(["auto", "jsonl", "csv", "parquet"]), default="auto",
              show_default=True, help="FILE's format; auto picks CSV for *.csv, Parquet for *.parquet, JSON Lines otherwise.")
@format_option
@pass_settings
def ingest_command(settings: Settings, file: str, input_fmt: str, fmt: str) -> None:
    """Store usage events from FILE (JSON Lines, CSV or Parquet) in the events database. Duplicate
    transaction_ids are ignored; bad lines are reported by number and skipped (exit 1 if any)."""
    from ..events.billing import open_events
    from ..events.ingest import ingest_file
    from ..events.parse import detect_format

    input_fmt = detect_format(file) if input_fmt == "auto" else input_fmt
    moved: list = []
    with open_events(settings.store, settings.events_db, memory_limit=settings.events_memory, moved=moved) as con:
        report_moved(moved)
        # A progress bar only for a person watching: never in CI logs, pipes or with --no-color.
        if sys.stderr.isatty() and settings.color and not settings.ci:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            size = max(1, os.path.getsize(file))
            with Progress(TextColumn("ingesting"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                          transient=True) as bar:
                task = bar.add_task("ingest", total=size)
                result = ingest_file(con, file, input_fmt,
                                     progress=lambda fraction: bar.update(task, completed=fraction * size))
        else:
            result = ingest_file(con, file, input_fmt)
    for error in result.errors:
        click.echo(f"{file}:{error}", err=True)
    if fmt == "json":
        echo_json({"read": result.read, "inserted": result.inserted, "duplicates": result.duplicates,
                   "bad_lines": [{"line": e.line, "message": e.message} for e in result.errors]})
    else:
        click.echo(f"Ingested {result.inserted} event(s); {result.duplicates} duplicate(s) ignored; "
                   f"{len(result.errors)} bad line(s).")
    sys.exit(1 if result.errors else 0)


def report_moved(moved) -> None:
    """What moving an older store's usage_events into the events file did (`events.move`)."""
    for result in moved:
        if result.read or result.errors:
            click.echo(f"Moved {result.inserted} event(s) from the store's usage_events table into the events "
                       f"database ({len(result.errors)} refused).", err=True)
            for error in result.errors[:10]:
                click.echo(f"  usage_events row {error.line}: {error.message}", err=True)


@click.command("invoices")
@click.option("--customer", "customers", multiple=True, metavar="KEY", help="Only this customer (repeatable).")
@click.option("--start", callback=_timestamp, metavar="T", help="Only invoices from T (inclusive).")
@click.option("--end", callback=_timestamp, metavar="T", help="Rate up to T (exclusive; default now).")
@format_option
@click.option("--from-manifests", is_flag=True,
              help="Rate against the manifests instead of the applied store state (events still come from the store).")
@click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Rate the events of FILE (JSON Lines or CSV), read in place, instead of the stored events.")
@pass_settings
def invoices_command(settings: Settings, customers: tuple[str, ...], start: datetime | None, end: datetime | None,
                     fmt: str, from_manifests: bool, events_file: str | None) -> None:
    """Run the rating engine over the stored usage events (or a file of them) and print the invoices."""
    from ..events.billing import rate_store, state_from_manifests, state_from_store
    from ..manifests import ManifestErrors
    from ..rating import invoices_json

    until = end or utc_now()
    for name, value in (("--start", start), ("--end", end)):
        if value is not None and value.year >= LAST_YEAR:
            # Statement periods run past --end (a year, for annual schedules): the calendar ends in 9999.
            raise click.BadParameter(f"must be before {LAST_YEAR}-01-01T00:00:00Z", param_hint=name)
    if start is not None and start >= until:
        raise click.UsageError("--start must be before --end")
    with _events_for_rating(settings, events_file) as con:
        try:
            state = state_from_manifests(settings.manifests_dir) if from_manifests \
                else state_from_store(settings.store, settings.backend())
        except ManifestErrors as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        unknown = [c for c in customers if c not in state.customers]
        if unknown:
            click.echo(f"error: unknown customer(s): {', '.join(unknown)}", err=True)
            sys.exit(1)
        (result,) = rate_store(con, state, until, start=start, customers=customers or None,
                               engine=settings.engine, spark_url=settings.spark_url)
    if fmt == "json":
        doc = invoices_json(result.invoices)
        if result.unattributed:
            doc["unattributed_customer_ids"] = result.unattributed
        click.echo(dumps(doc, indent=2))
    else:
        from ..rating.invoice_text import render_invoices
        from ..rating.invoices import invoices_total

        click.echo(render_invoices(result.invoices, result.unattributed, invoices_total(result.invoices)))


@contextmanager
def _events_for_rating(settings: Settings, events_file: str | None):
    """The stored events, or those of a file read in place (its bad lines stop the run)."""
    if events_file is None:
        from ..events.billing import open_events

        moved: list = []
        with open_events(settings.store, settings.events_db, read_only=True, memory_limit=settings.events_memory,
                         moved=moved) as con:
            report_moved(moved)
            yield con
        return
    from ..events.billing import events_in_file
    from ..events.parse import detect_format

    con, result = events_in_file(events_file, detect_format(events_file), memory_limit=settings.events_memory)
    try:
        if result.errors:
            for error in result.errors[:20]:
                click.echo(f"{events_file}:{error}", err=True)
            click.echo(f"error: {events_file} has {len(result.errors)} bad line(s); fix them to rate it", err=True)
            sys.exit(1)
        yield con
    finally:
        con.close()


COMMANDS = [ingest_command, invoices_command]
