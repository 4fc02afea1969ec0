"""What every command shares for machine-readable output: the `--format text|json` option and
the JSON writer (exact Decimals, keys in the order given)."""

from __future__ import annotations

from typing import Any

import sys

import click

TEXT_OR_JSON = click.Choice(["text", "json"])


def format_option(func):
    """`--format text|json`: json prints one JSON document on stdout and nothing else there."""
    return click.option("--format", "fmt", type=TEXT_OR_JSON, default="text", show_default=True,
                        help="Output format; json is one document on stdout (messages go to stderr).")(func)


def echo_json(data: Any) -> None:
    from .. import canonical

    click.echo(canonical.dumps(data, indent=2, sort_keys=False))


def fail(message: str) -> None:
    """`Error: message` on stderr, exit 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def fail_with_problems(problems) -> None:
    """Every manifest problem located on stderr, then exit 1."""
    for problem in problems:
        click.echo(str(problem), err=True)
    fail(f"{len(problems)} problem(s) in the manifests; fix them and plan again")
