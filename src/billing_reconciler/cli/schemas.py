"""`schemas`: write the JSON Schemas generated from the models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..manifests.schema import stale_schemas, write_schemas


@click.command("schemas")
@click.option("--out", "out_dir", default="schemas", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the schemas into.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the directory is out of date.")
def command(out_dir: str, check: bool) -> None:
    """Write one JSON Schema per kind plus a combined one for editors."""
    directory = Path(out_dir)
    if check:
        stale = stale_schemas(directory)
        for name in stale:
            click.echo(f"{directory / name}: out of date; run `billing-reconciler schemas`", err=True)
        sys.exit(1 if stale else 0)
    written = write_schemas(directory)
    click.echo(f"Wrote {len(written)} schemas to {directory}/.")


COMMANDS = [command]
