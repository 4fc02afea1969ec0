"""The backend is the truth, through the CLI: a change made in the billing app (here: straight
through the emulator, in another process) shows in `plan` as drift, `plan --no-refresh` plans
against the state last read, `show` prints the object as the backend holds it, and `import`
adopts an object the tool never made."""

from __future__ import annotations

import json
from pathlib import Path

from billing_reconciler.apply.backends.embedded import EmbeddedBackend
from billing_reconciler.store.store import Store

from ..conftest import run_cli


def in_the_billing_app(url: str, method: str, path: str, body: dict) -> dict:
    store = Store(url)
    try:
        with store.transaction(holder="billing app") as conn:
            emulator = EmbeddedBackend().emulator(conn)
            response = emulator.execute(method, path, body)
            emulator.flush()
        return response
    finally:
        store.close()


def test_drift_no_refresh_show_and_import_through_the_cli(example_tree: Path):
    url = f"sqlite:///{example_tree}/.billing-reconciler/state.db"
    run_cli("init", cwd=example_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    shown = json.loads(run_cli("show", "Customer/widgetsexpress", "--format", "json", cwd=example_tree,
                               check=True).stdout)["objects"][0]
    assert shown["api"]["id"] == shown["id"] and shown["api"]["name"] == "WidgetsExpress"
    assert shown["api"]["customer_billing_provider_configurations"][0]["id"]  # ids the API gave

    in_the_billing_app(url, "POST", f"/v1/customers/{shown['id']}/setName", {"name": "Widgets (renamed)"})
    stale = run_cli("plan", "--no-refresh", "--detailed-exitcode", cwd=example_tree)
    assert stale.returncode == 0, stale.stdout  # the state last read knows nothing of it
    fresh = run_cli("plan", "--detailed-exitcode", "--format", "json", cwd=example_tree)
    assert fresh.returncode == 2
    plan = json.loads(fresh.stdout)
    assert [d["address"] for d in plan["drift"]] == ["Customer/widgetsexpress"]
    [op] = plan["operations"]
    assert (op["op"], op["request"]["body"], op["drift"]) == ("set_customer_name", {"name": "WidgetsExpress"}, True)
    assert json.loads(run_cli("show", "Customer/widgetsexpress", "--format", "json", cwd=example_tree,
                              check=True).stdout)["objects"][0]["api"]["name"] == "Widgets (renamed)"
    run_cli("apply", "--auto-approve", cwd=example_tree, check=True)
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree).returncode == 0

    made = in_the_billing_app(url, "POST", "/v1/customers", {"name": "Made In The App",
                                                              "ingest_aliases": ["app-made"]})
    imported = json.loads(run_cli("import", "--format", "json", cwd=example_tree, check=True).stdout)
    assert [(i["address"], i["adopted"]) for i in imported["imported"]] == [("Customer/made-in-the-app", True)]
    written = example_tree / imported["imported"][0]["file"]
    assert "name: Made In The App" in written.read_text()
    assert run_cli("plan", "--detailed-exitcode", cwd=example_tree).returncode == 0
    shown = json.loads(run_cli("show", "Customer/made-in-the-app", "--format", "json", cwd=example_tree,
                               check=True).stdout)["objects"][0]
    assert shown["id"] == made["data"]["id"]
