"""Pull-request workflow commands: `fmt`, and `plan --from-ref` (an option of `plan`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .context import Settings, pass_settings
from .output import fail, fail_with_problems, format_option

FMT_EXIT_CODES = """\b
Exit codes:
  0  every file is (now) in canonical form
  1  --check: some files would be reformatted (listed); or a file could not be read or parsed
"""


def plan_against_ref(settings: Settings, ref: str, *, targets=(), prune: bool = False, replace=(),
                     out_file: str | None = None):
    """`plan --from-ref REF`: the working tree's manifests planned against those of a git revision.

    Prints problems and exits 1 on any error; returns the Plan otherwise.
    """
    from ..gitrefs import BaseRevisionErrors, GitError, plan_from_ref
    from ..manifests import ManifestErrors
    from ..plan.planner import UnknownAddress

    if not ref.strip():
        fail("--from-ref needs a git revision (e.g. --from-ref origin/main); it was given an empty one "
             "(an unset variable?). Without --from-ref, plan compares with the store.")
    if out_file:
        fail("--out cannot be used with --from-ref: that plan compares two git revisions, not the store, "
              "so it cannot be applied; save a plan made against the store (without --from-ref)")
    try:
        plan = plan_from_ref(settings.manifests_dir, ref, cache=settings.manifest_cache(), targets=tuple(targets),
                             prune=prune, replace=tuple(replace))
    except ManifestErrors as exc:
        fail_with_problems(exc.problems)
        raise
    except BaseRevisionErrors as exc:
        for problem in exc.revision.problems:
            click.echo(str(problem), err=True)
        fail(f"{exc}, listed above (files shown as {exc.revision.ref}:PATH); --from-ref cannot compare with "
              "manifests that do not validate. Plan against the store instead (without --from-ref).")
        raise
    except (GitError, UnknownAddress) as exc:
        fail(str(exc))
        raise
    base = plan.extras["from_ref"]
    note = "" if base["exists"] else f" ({base['directory']} does not exist there: everything is new)"
    click.echo(f"Planning {settings.manifests_dir} against git revision {ref} (commit {base['commit'][:12]}), "
               f"not the store{note}; ids of existing objects show as (known after apply).", err=True)
    return plan


def run_plan_from_ref(settings: Settings, ref: str, *, fmt: str, out_file: str | None, detailed_exitcode: bool,
                      targets=(), prune: bool = False, replace=(), usage_file: str | None = None) -> None:
    """The whole of `plan --from-ref REF`: plan, add the invoice impact, render, exit."""
    from ..plan.render import render
    from ..service import account_secrets

    plan = plan_against_ref(settings, ref, targets=targets, prune=prune, replace=replace, out_file=out_file)
    if usage_file and not plan.errored:
        plan = _with_ref_invoice_impact(settings, ref, plan, usage_file)
    secrets = account_secrets(settings.manifests_dir, cache=settings.manifest_cache())
    click.echo(render(plan, fmt, color=settings.color, secrets=secrets), nl=False)
    if plan.errored:
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and plan.has_changes else 0)


def _with_ref_invoice_impact(settings: Settings, ref: str, plan, usage_file: str):
    """Invoice totals rated with the revision's manifests (before) and the working tree's (after)."""
    from dataclasses import replace as dc_replace

    from ..gitrefs import load_manifests_at
    from ..manifests import load_manifests
    from ..plan.impact import UsageFileError, invoice_impact, read_usage
    from ..service import revision_states

    base = load_manifests_at(ref, settings.manifests_dir)
    manifests = load_manifests(settings.manifests_dir, cache=settings.manifest_cache()).manifests
    try:
        events = read_usage(usage_file, memory_limit=settings.events_memory)
        before, after = revision_states(base.manifests, manifests)
        impact = invoice_impact(before, after, usage_file, events, engine=settings.engine,
                                spark_url=settings.spark_url)
    except UsageFileError as exc:
        fail(str(exc))
        raise
    return dc_replace(plan, extras={**plan.extras, "invoice_impact": impact})


@click.command("fmt", epilog=FMT_EXIT_CODES)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing the files that would change.")
@format_option
@pass_settings
def fmt_command(settings: Settings, paths: tuple[str, ...], check: bool, fmt: str) -> None:
    """Rewrite manifests in canonical form, keeping comments.

    Keys in the order of the manifest models, 2-space indentation with list dashes at 2, quotes
    only where YAML needs them. Values are untouched: formatted files validate to the same
    objects. PATHS (files or directories) default to the manifests directory.
    """
    from ..manifests.fmt import format_files, format_tree
    from ..manifests.loader import manifest_files

    if paths:
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            files.extend(manifest_files(path) if path.is_dir() else [path])
        result = format_files(sorted(set(files)), write=not check)
    else:
        result = format_tree(settings.manifests_dir, write=not check)
    if fmt == "json":
        click.echo(json.dumps({
            "check": check,
            "ok": result.ok and not (check and result.changed),
            "changed": result.changed,
            "unchanged": result.unchanged,
            "skipped": result.skipped,
            "problems": [p.__dict__ for p in result.problems],
        }, indent=2))
    else:
        for problem in result.problems:
            click.echo(str(problem), err=True)
        verb = "would reformat" if check else "reformatted"
        for name in result.changed:
            click.echo(f"{verb} {name}")
        done = f"{len(result.changed)} file(s) {'would be reformatted' if check else 'reformatted'}, " \
               f"{len(result.unchanged)} already formatted"
        if result.problems:
            done += f", {len(result.problems)} could not be formatted"
        click.echo(done + "." + (" Run `billing-reconciler fmt` to fix." if check and result.changed else ""),
                   err=bool(check and result.changed))
    sys.exit(1 if result.problems or (check and result.changed) else 0)


COMMANDS = [fmt_command]
