"""`schemas`: write the JSON Schemas generated from the models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..manifests.schema import stale_schemas, write_schemas
from .output import echo_json, fail, format_option


@click.command("schemas")
@click.option("--out", "out_dir", default="schemas", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the schemas into.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the directory is out of date.")
@format_option
def command(out_dir: str, check: bool, fmt: str) -> None:
    """Write one JSON Schema per kind plus a combined one for editors."""
    directory = Path(out_dir)
    if check:
        stale = stale_schemas(directory)
        if fmt == "json":
            echo_json({"stale": [str(directory / name) for name in stale]})
        for name in stale:
            click.echo(f"{directory / name}: out of date; run `billing-reconciler schemas`", err=True)
        sys.exit(1 if stale else 0)
    try:
        written = write_schemas(directory)
    except OSError as exc:
        fail(f"cannot write the schemas to {directory}/: {exc.strerror}; pass --out a writable directory")
        raise
    if fmt == "json":
        echo_json({"written": [str(path) for path in written]})
    else:
        click.echo(f"Wrote {len(written)} schemas to {directory}/.")


COMMANDS = [command]
