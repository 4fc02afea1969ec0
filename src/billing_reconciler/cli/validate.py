"""`validate`: load and check every manifest, print every problem located."""

from __future__ import annotations

import json
import sys

import click

from ..manifests import load_manifests
from .context import Settings, pass_settings
from .output import format_option


@click.command("validate")
@format_option
@pass_settings
def command(settings: Settings, fmt: str) -> None:
    """Check all manifests; report every problem as file:line:col: Kind/key: field: message."""
    from ..manifests.from_env import variables

    result = load_manifests(settings.manifests_dir, cache=settings.manifest_cache())
    from_env = variables(result.manifests)
    if fmt == "json":
        click.echo(json.dumps({
            "valid": result.ok,
            "files": result.files,
            "objects": len(result.manifests),
            "problems": [p.__dict__ for p in result.problems],
            "from_env": from_env,
        }, indent=2))
    else:
        for problem in result.problems:
            click.echo(str(problem), err=True)
        if result.ok:
            counts: dict[str, int] = {}
            for doc in result.manifests:
                counts[doc.kind] = counts.get(doc.kind, 0) + 1
            detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            click.echo(f"Valid: {len(result.manifests)} objects in {result.files} files"
                       + (f" ({detail})" if detail else "") + ".")
            if from_env:
                click.echo(f"Read from the environment by plan and apply (validate does not need them set): "
                           f"{', '.join(from_env)}.")
        else:
            click.echo(f"{len(result.problems)} problem(s) found in {settings.manifests_dir}.", err=True)
    sys.exit(0 if result.ok else 1)


COMMANDS = [command]
