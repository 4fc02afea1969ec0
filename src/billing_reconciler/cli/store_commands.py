"""Store commands: init, plan, apply, show, history, import."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from .context import Settings, ignore_working_files, pass_settings
from .output import echo_json, fail, fail_with_problems, format_option
from .params import SECONDS

# Heavy modules (sqlalchemy, pydantic, deepdiff) are imported inside the commands that need
# them, so `--help` and `validate` stay fast.

FORMATS = click.Choice(["text", "markdown", "json"])
PARALLELISM = click.option(
    "--parallelism", type=click.IntRange(1, 64), default=None, envvar="BILLING_RECONCILER_PARALLELISM",
    help="--backend metronome: requests in flight at once (operations of different customers; refresh "
         "reads). Default 10, as Terraform's. Env: BILLING_RECONCILER_PARALLELISM.")


def open_store(settings: Settings, *, create: bool = False):
    """The store of --store; it must exist and be initialised unless `create` (init)."""
    from ..store.access import open_existing, open_for_init
    from ..store.store import StoreError
    from ..store.urls import StoreUrlError, display, scrub

    try:
        return open_for_init(settings.store) if create else open_existing(settings.store)
    except (StoreUrlError, StoreError) as exc:  # missing, uninitialised, damaged, newer
        fail(str(exc))
        raise
    except ImportError as exc:  # a driver missing from this installation
        fail(f"cannot open store {display(settings.store)}: {scrub(str(exc), settings.store)}")
        raise


def non_interactive(settings: Settings) -> bool:
    return settings.ci or not sys.stdin.isatty()


@click.command("init")
@format_option
@pass_settings
def init_command(settings: Settings, fmt: str) -> None:
    """Create the store (or upgrade its schema) and a starter manifests/ directory if absent."""
    from ..events.move import mover
    from ..store.urls import display
    from .rating_commands import report_moved

    store = open_store(settings, create=True)
    ignore_working_files()
    # An older store's events go into the events file first, then the upgrade drops their table.
    moved: list = []
    lineage, created = store.init(move_events=mover(settings.store, settings.events_db,
                                                    memory_limit=settings.events_memory, moved=moved))
    report_moved(moved)
    _open_events_file(settings)
    manifests = Path(settings.manifests_dir)
    made_manifests = not manifests.exists()
    if made_manifests:
        manifests.mkdir(parents=True)
        (manifests / "README.md").write_text("Put billing-reconciler manifests (*.yaml) here.\n")
    if fmt == "json":
        echo_json({"store": display(store.url), "lineage": lineage, "created": created,
                   "schema_version": store.schema_version(),
                   "manifests_created": str(manifests) if made_manifests else None})
        return
    click.echo(("Initialised" if created else "Store already initialised;") +
               f" store {display(store.url)} (lineage {lineage}, schema v{store.schema_version()}).")
    if made_manifests:
        click.echo(f"Created {manifests}/.")


def _open_events_file(settings: Settings) -> None:
    """Create the events file where its path is known: a PostgreSQL store without --events-db gets
    its file named at the first ingest. (A store upgraded just now had its events moved already.)"""
    from ..events.billing import open_events
    from ..events.engine import EventsError, events_path

    try:
        events_path(settings.store, settings.events_db)
    except EventsError:
        return
    from .rating_commands import report_moved

    moved: list = []
    with open_events(settings.store, settings.events_db, memory_limit=settings.events_memory, moved=moved):
        pass
    report_moved(moved)


def _make_plan(settings: Settings, targets, prune, replace, refresh: bool = True):
    """(store, plan, secrets): the plan of the manifests against the store, and what they mark sensitive."""
    from ..manifests import ManifestErrors
    from ..plan.planner import UnknownAddress
    from ..redaction import AccountSecrets
    from ..service import load_tree, plan_loaded

    store = open_store(settings)
    try:
        loaded = load_tree(settings.manifests_dir, cache=settings.manifest_cache())
        plan = plan_loaded(store, loaded, targets=tuple(targets), prune=prune, replace=tuple(replace),
                           refresh=refresh, backend=settings.backend())
    except ManifestErrors as exc:
        fail_with_problems(exc.problems)
        raise
    except UnknownAddress as exc:
        fail(str(exc))
        raise
    return store, plan, AccountSecrets.from_manifests(loaded.manifests)


def target_option(func):
    return click.option("--target", "targets", multiple=True, metavar="ADDRESS",
                        help="Only this object (and what it needs); repeatable.")(func)


def prune_option(func):
    return click.option("--prune", is_flag=True, help="Archive store objects that no manifest manages.")(func)


def replace_option(func):
    return click.option("--replace", "replace", multiple=True, metavar="ADDRESS",
                        help="Archive and re-create this object (for fields the API cannot change); repeatable.")(func)


@click.command("plan")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True,
              help="text for a terminal; markdown for a pull-request comment; json: the plan-file document "
                   "(secrets hidden).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Save the plan for `apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@target_option
@prune_option
@replace_option
@click.option("--usage", "usage_file", type=click.Path(exists=True, dir_okay=False), metavar="EVENTS",
              help="Usage events (JSONL/CSV): show each affected customer's invoice total, subtotal, commit/credit "
                   "drawdown and remaining balances before and after, in dollars.")
@click.option("--from-ref", "from_ref", metavar="REF",
              help="Compare with the manifests at this git revision instead of the store (e.g. origin/main).")
@click.option("--no-refresh", "no_refresh", is_flag=True,
              help="Plan against the state last read from the backend, without reading it again "
                   "(Terraform's -refresh=false); changes made behind the tool's back since are not seen.")
@PARALLELISM
@pass_settings
def plan_command(settings: Settings, fmt, out_file, detailed_exitcode, targets, prune, replace, usage_file,
                 from_ref, no_refresh, parallelism) -> None:
    """Show the billing API operations that turn the store into what the manifests say."""
    from ..plan.planfile import write_plan
    from ..plan.render import render

    settings.parallelism = parallelism
    if from_ref is not None:  # `--from-ref ""` (an unset CI variable) must not plan against the store
        from .workflow_commands import run_plan_from_ref

        run_plan_from_ref(settings, from_ref, fmt=fmt, out_file=out_file, detailed_exitcode=detailed_exitcode,
                          targets=targets, prune=prune, replace=replace, usage_file=usage_file)
    store, plan, secrets = _make_plan(settings, targets, prune, replace, refresh=not no_refresh)
    if usage_file and not plan.errored:
        plan = _with_invoice_impact(settings, store, plan, usage_file)
    click.echo(render(plan, fmt, color=settings.color, secrets=secrets), nl=False)
    if out_file and not plan.errored:
        try:
            write_plan(plan, out_file, secrets, store.digest_key())
        except OSError as exc:
            fail(f"cannot write the plan to {out_file}: {exc.strerror}; pass --out a path in an existing, "
                 "writable directory")
        click.echo(f"Saved the plan to {out_file}; apply it with `billing-reconciler apply {out_file}`.", err=True)
    if plan.errored:
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and plan.has_changes else 0)


@click.command("apply")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--lock-timeout", default=30.0, show_default=True, type=SECONDS, help="Seconds to wait for the store lock.")
@target_option
@prune_option
@replace_option
@PARALLELISM
@format_option
@pass_settings
def apply_command(settings: Settings, plan_file, auto_approve, lock_timeout, targets, prune, replace, parallelism,
                  fmt) -> None:
    """Execute a saved plan, or plan now, show it and ask before applying.

    With --format json nothing is asked (pass --auto-approve or a plan file) and stdout gets one
    document: the plan that was applied (plan-file format) and the result.
    """
    from ..apply.applier import ApplyError
    from ..apply.journal import ExistsInAccount, RemoteApplyError
    from ..apply.pending import AmbiguousMatch
    from ..plan.planfile import PlanFileError, StalePlan, plan_from_json, read_plan_document
    from ..plan.render import render
    from ..plan.render.json_view import redacted_plan_json
    from ..store.store import LockTimeout, NotInitialized

    as_json = fmt == "json"
    settings.parallelism = parallelism
    store = open_store(settings)
    if plan_file:
        try:
            given = read_plan_document(plan_file)
            saved = plan_from_json(given)
        except PlanFileError as exc:
            fail(str(exc))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError, RecursionError) as exc:
            # Valid JSON of another shape (a top-level array, an operation without `request`, ...).
            what = f"missing field {exc}" if isinstance(exc, KeyError) else "unexpected structure"
            fail(f"{plan_file} is not a plan file written by `billing-reconciler plan --out` ({what}); "
                 "make a new one with `billing-reconciler plan --out FILE`")
        _check_same_backend(settings, saved)
        plan, secrets = _rederive(settings, store, plan_file, given)
    else:
        store, plan, secrets = _make_plan(settings, targets, prune, replace)
        if not as_json:
            click.echo(render(plan, "text", color=settings.color, secrets=secrets), nl=False)
        if plan.errored:
            if as_json:
                echo_json({"plan": redacted_plan_json(plan, secrets), "applied": False})
            sys.exit(1)
        if plan.has_changes and not auto_approve:
            if as_json or non_interactive(settings):
                fail("refusing to apply without confirmation: no terminal (or CI=true, or --format json); "
                     "pass --auto-approve, or apply a saved plan file")
            if not click.confirm("Apply these operations?", default=False):
                fail("apply cancelled; nothing was changed")
    if plan.errored:
        fail("the plan has errors and cannot be applied")
    result = None
    if plan.has_changes:
        actor = os.environ.get("BILLING_RECONCILER_ACTOR") or f"{getpass.getuser()}@{os.uname().nodename}"
        try:
            result = _apply_with_progress(store, plan, lock_timeout, actor, settings.color and not as_json,
                                          settings.backend(), secrets)
        except (ApplyError, RemoteApplyError) as exc:  # the backend's message may quote the request: hide its secrets
            fail(secrets(exc.op.address).scrub(str(exc), exc.op.request.body))
        except (ExistsInAccount, AmbiguousMatch) as exc:
            fail(str(exc))
        except (StalePlan, LockTimeout, NotInitialized) as exc:
            fail(str(exc))
    if as_json:
        echo_json({"plan": redacted_plan_json(plan, secrets), "applied": result is not None,
                   "operations": len(result.applied) if result else 0,
                   "serial": result.serial if result else plan.serial})
    elif result is None:
        if plan_file:
            click.echo("No changes to apply.")
    else:
        store_only = (f", {len(plan.moves)} object(s) moved" if plan.moves else "") + (
            f", {len(plan.records)} lifecycle record(s) stored" if plan.records else "")
        click.echo(f"Apply complete: {len(result.applied)} operation(s) applied{store_only}; store serial is now "
                   f"{result.serial}.")


def _apply_with_progress(store, plan, lock_timeout, actor, color, backend, secrets):
    from ..apply.applier import apply_plan

    if not (color and len(plan.operations) > 50):
        return apply_plan(store, plan, backend, lock_timeout=lock_timeout, actor=actor, secrets=secrets)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("Applying", total=len(plan.operations))
        return apply_plan(store, plan, backend, lock_timeout=lock_timeout, actor=actor, secrets=secrets,
                          progress=lambda i, op: progress.update(task, completed=i + 1))


def _with_invoice_impact(settings: Settings, store, plan, usage_file: str):
    from dataclasses import replace as dc_replace

    from ..plan.impact import UsageFileError, invoice_impact, read_usage
    from ..service import billing_state, plan_state

    if getattr(settings.backend(), "remote", False):
        fail("plan --usage rates a what-if of the plan, run on the embedded emulator inside a rolled-back "
             "transaction; a remote API cannot do that. Plan with --backend embedded, or without --usage.")
    try:
        events = read_usage(usage_file, memory_limit=settings.events_memory)
        impact = invoice_impact(billing_state(store), plan_state(store, plan), usage_file, events,
                                engine=settings.engine, spark_url=settings.spark_url)
    except UsageFileError as exc:
        fail(str(exc))
    return dc_replace(plan, extras={**plan.extras, "invoice_impact": impact})


def _check_same_backend(settings: Settings, plan) -> None:
    """A saved plan is applied to the API it was made against."""
    made = plan.extras.get("backend") or {"name": "embedded"}
    backend = settings.backend()
    now = {"name": backend.name, "api": getattr(backend, "target", None)}
    if made.get("name") != now["name"] or made.get("api") != now["api"]:
        where = lambda t: t["name"] + (f" API at {t['api']}" if t.get("api") else "")  # noqa: E731
        fail(f"the plan was made against the {where(made)}, not the {where(now)}; apply it with the same "
             "--backend and METRONOME_BASE_URL, or run plan again")


def _rederive(settings: Settings, store, plan_file: str, given: dict):
    """(plan, secrets) of `apply FILE`: the file's plan made again now (service.rederive_plan)."""
    from ..manifests import ManifestErrors
    from ..plan.planfile import StalePlan
    from ..plan.planner import UnknownAddress
    from ..service import PlanMismatch, rederive_plan

    if not Path(settings.manifests_dir).is_dir():
        fail(f"apply {plan_file} plans again from the manifests to check the file and to take the secrets from "
             f"the manifests and the environment, but {settings.manifests_dir}/ is not there; run it from the "
             "directory the plan was made in (or pass --manifests DIR)")
    try:
        return rederive_plan(store, settings.manifests_dir, given, cache=settings.manifest_cache(),
                             backend=settings.backend())
    except StalePlan as exc:
        fail(str(exc))
    except ManifestErrors as exc:
        fail_with_problems(exc.problems)
    except UnknownAddress as exc:
        fail(f"{plan_file}: {exc}")
    except PlanMismatch as exc:
        listed = "".join(f"\n  - {d}" for d in exc.differences)
        fail(f"{plan_file} is not the plan that the manifests in {settings.manifests_dir}/, the environment and "
             f"the store make now; nothing was applied. Differences (the file, then now):{listed}\n"
             "A plan file is never applied as written: apply makes the plan again and runs it only if it is "
             "the same. Was the file edited, or did the manifests, an environment variable or the backend "
             "change since? Run plan again.")
    raise AssertionError("unreachable")


@click.command("show")
@click.argument("address", required=False)
@click.option("--archived", is_flag=True, help="Include archived objects (pruned, replaced or archived by "
                                              "an apply), marked (archived).")
@format_option
@pass_settings
def show_command(settings: Settings, address, archived, fmt) -> None:
    """Show the objects as the backend holds them (or one, by address): ids, API shape, items."""
    from .. import canonical
    from ..service import ArchivedObject, account_secrets, show_objects

    store = open_store(settings)
    secrets = account_secrets(settings.manifests_dir, cache=settings.manifest_cache())
    try:
        shown = show_objects(store, address or None, settings.backend(), archived=archived)
    except ArchivedObject:
        fail(f"{address} is archived; pass --archived to show it")
        raise
    except KeyError:
        fail(f"{address} is not in the store")
        raise
    lineage, serial = store.state()
    data = {
        "store": {"lineage": lineage, "serial": serial},
        "objects": [{**o, "spec": secrets(o["address"]).value(o["spec"]), "api": secrets(o["address"]).value(o["api"])}
                    for o in shown],
    }
    if fmt == "json":
        echo_json(data)
        return
    click.echo(f"Store lineage {lineage}, serial {serial}, {len(shown)} object(s).")
    for obj in data["objects"]:
        click.echo(f"{obj['address']}  id={obj['id']}" + ("  (archived)" if obj["archived"] else "")
                   + ("  (drifted)" if obj["drifted"] else "")
                   + ("  (protected)" if obj["protected"] else "")
                   + (f"  (moved from {', '.join(obj['moved_from'])})" if obj["moved_from"] else ""))
        if address:
            click.echo(canonical.dumps(obj["api"], indent=2, sort_keys=False))
            for item in obj["items"]:
                state = "archived" if item["archived"] else "active"
                click.echo(f"  {item['list']}[{item['key']}]  id={item['id']}  {state}")


@click.command("history")
@click.argument("address", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the N newest operations.")
@click.option("-v", "--verbose", is_flag=True, help="Show each request: method, path and body (secrets hidden).")
@format_option
@pass_settings
def history_command(settings: Settings, address, limit, verbose, fmt) -> None:
    """Applied operations, newest first."""
    from ..plan.render.common import show_body
    from ..service import account_secrets

    store = open_store(settings)
    secrets = account_secrets(settings.manifests_dir, cache=settings.manifest_cache())
    rows = [secrets(row["address"]).value(row) for row in store.history(address, limit)]
    if fmt == "json":
        echo_json({"edits": rows})
        return
    if not rows:
        click.echo("No applied operations" + (f" for {address}." if address else "."))
    for row in rows:
        click.echo(f"serial {row['serial']}  {row['applied_at']}  {row['op']:<48} {row['address']}  ({row['actor']})")
        if verbose:
            request = row["request"]
            click.echo(f"    {request['method']} {request['path']}")
            body = show_body(request["body"], secrets(row["address"]))
            click.echo("\n".join("    " + line for line in body.splitlines()))


@click.command("import")
@click.option("--out", "out_dir", default=None, help="Directory to write into (default: <manifests>/imported).")
@format_option
@pass_settings
def import_command(settings: Settings, out_dir, fmt) -> None:
    """Write manifests for objects no manifest manages: store objects, and objects the backend
    holds that the store maps to no key (made in the billing app), which are adopted."""
    from ..manifests import load_manifests
    from ..manifests.export import write_manifests
    from ..service import objects_to_import

    store = open_store(settings)
    loaded = load_manifests(settings.manifests_dir, cache=settings.manifest_cache()) \
        if Path(settings.manifests_dir).exists() else None
    if loaded is not None and loaded.problems:
        for problem in loaded.problems:
            click.echo(str(problem), err=True)
        fail("fix the manifests before importing (import must know which objects are managed)")
    objects, new = objects_to_import(store, loaded.manifests if loaded else [], settings.backend())
    target = Path(out_dir) if out_dir else Path(settings.manifests_dir) / "imported"
    written, refused = write_manifests(objects, target) if objects else ([], [])
    for index, why in refused:
        kind, key, _ = objects[index]
        click.echo(f"{kind}/{key}: not imported: {why}", err=True)
    if fmt == "json":
        echo_json({"imported": [{"address": f"{objects[i][0]}/{objects[i][1]}", "file": str(path),
                                 "adopted": f"{objects[i][0]}/{objects[i][1]}" in new} for i, path in written]})
    elif not objects:
        click.echo("Nothing to import: every object is managed by a manifest.")
    else:
        click.echo(f"Imported {len(written)} object(s) into {len(written)} file(s) under {target}/"
                   + (f" ({len(new)} adopted from the backend)." if new else "."))
    if refused:
        fail(f"{len(refused)} object(s) not imported (see above)")


COMMANDS = [init_command, plan_command, apply_command, show_command, history_command, import_command]
