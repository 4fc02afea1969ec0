"""Help where people look (issue 14, item 6), through the CLI as a subprocess: global options
after the command, `show --archived`, `history -v`; and the help text of every option."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from billing_reconciler.cli import main

from ..conftest import run_cli

CUSTOMER_FILE = Path("manifests/customers/widgetsexpress.yaml")


def _options_without_help(command: click.Command, path: str) -> list[str]:
    missing = [f"{path} {option.opts[0]}" for option in command.params
               if isinstance(option, click.Option) and not option.help]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            missing += _options_without_help(sub, f"{path} {name}")
    return missing


def test_every_option_of_every_command_has_help():
    # Mutation caught: any option added (or left) without help=..., e.g. `apply --target`.
    assert _options_without_help(main, "billing-reconciler") == []


def test_global_options_are_accepted_after_the_command(tmp_path: Path, example_tree: Path):
    store = f"sqlite:///{tmp_path}/elsewhere/state.db"
    (tmp_path / "elsewhere").mkdir()
    shutil.move(example_tree / "manifests", example_tree / "billing")
    # Mutation caught: no hoisting (click: "No such option: --store", exit 1).
    assert run_cli("init", "--store", store, "--manifests", "billing", cwd=example_tree).returncode == 0
    plan = run_cli("plan", "--format", "json", f"--store={store}", "--manifests", "billing", cwd=example_tree)
    assert plan.returncode == 0, plan.stderr
    assert len(json.loads(plan.stdout)["operations"]) == 24  # the example account: 24 creates
    # The same option before and after: the one after the command wins (as click's last value).
    late = run_cli("--store", "sqlite:///nowhere/none.db", "plan", "--store", store, "--manifests", "billing",
                   cwd=example_tree)
    assert late.returncode == 0, late.stderr
    # A command's own option is never taken for a global one; a wrong one still exits 1.
    bad = run_cli("plan", "--store", cwd=example_tree)
    assert bad.returncode == 1 and "--store" in bad.stderr and "requires an argument" in bad.stderr
    # ... and the command's help says so (mutation: the note not added to subcommands).
    assert "Global options are accepted here too (--store, --manifests," in \
        run_cli("plan", "--help", cwd=example_tree, check=True).stdout


def test_show_archived_and_history_verbose(example_tree: Path):
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/state.db"}
    run_cli("init", cwd=example_tree, env=env, check=True)
    customer = example_tree / CUSTOMER_FILE
    customer.write_text(customer.read_text().replace(
        "    sfdc_account_id: sfdc1001\n", "    sfdc_account_id: sfdc1001\n    crm_token: tok_SECRET123\n", 1))
    run_cli("apply", "--auto-approve", cwd=example_tree, env=env, check=True)
    (example_tree / "manifests/customers/seat-plans.yaml").unlink()
    run_cli("apply", "--auto-approve", "--prune", cwd=example_tree, env=env, check=True)

    # Mutation caught: --archived ignored (the pruned contracts not listed, or not marked).
    live = run_cli("show", cwd=example_tree, env=env, check=True).stdout
    everything = run_cli("show", "--archived", cwd=example_tree, env=env, check=True).stdout
    archived = [line.split()[0] for line in everything.splitlines() if "(archived)" in line]
    assert archived and all(address not in live for address in archived)
    assert "Contract/widgetsexpress-2024" in live and "(archived)" not in live
    one = run_cli("show", archived[0], cwd=example_tree, env=env)
    assert one.returncode == 1 and f"{archived[0]} is archived; pass --archived to show it" in one.stderr
    shown = json.loads(run_cli("show", archived[0], "--archived", "--format", "json", cwd=example_tree,
                               env=env, check=True).stdout)
    assert [(o["address"], o["archived"]) for o in shown["objects"]] == [(archived[0], True)]

    # history -v: each request's method, path and body, the secret hidden (mutation: -v ignored,
    # or the body printed unredacted).
    history = run_cli("history", "Customer/widgetsexpress", "-v", cwd=example_tree, env=env, check=True).stdout
    assert "    POST /v1/customers\n" in history and '"crm_token": "(sensitive)"' in history
    assert "tok_SECRET123" not in history
    plain = run_cli("history", "Customer/widgetsexpress", cwd=example_tree, env=env, check=True).stdout
    assert "POST /v1/customers" not in plain
