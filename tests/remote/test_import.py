"""`import` against the metronome backend: an account made by one store is adopted by another
through the API's paginated lists, into manifests; import then plan = no changes.

The example account holds 4 metrics + 8 products + 2 rate cards + 4 customers + 4 contracts = 22
objects (counted by hand in manifests/).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from billing_reconciler.apply.applier import apply_plan
from billing_reconciler.apply.backends.metronome import MetronomeBackend
from billing_reconciler.manifests.export import write_manifests
from billing_reconciler.service import objects_to_import, plan_from_tree
from billing_reconciler.store.store import Store

from ..conftest import EXAMPLE_MANIFESTS, run_cli
from ..http_emulator import new_token, serve_in_thread, served_app


def test_import_adopts_every_object_across_pages_and_then_plans_nothing(tmp_path: Path):
    # Mutations caught: following only the first page of a list (page size 3 here: 4 customers,
    # 8 products need 2-3 pages), listing no archived/other customers' contracts, an adopted
    # object whose stored body differs from what the next refresh reads (plan not empty).
    token = new_token()
    app = served_app(tmp_path / "data", token)
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    made, adopting = Store(f"sqlite:///{tmp_path}/made.db"), Store(f"sqlite:///{tmp_path}/adopting.db")
    try:
        with serve_in_thread(app) as base_url:
            backend = MetronomeBackend(base_url=base_url, token=token)
            backend.page_limit = 3
            made.init()
            apply_plan(made, plan_from_tree(made, tmp_path / "manifests", backend=backend), backend)

            adopting.init()
            objects, adopted = objects_to_import(adopting, [], backend)
            assert len(adopted) == 22 and len(objects) == 22
            assert sorted(a.split("/")[0] for a in adopted).count("Contract") == 4
            written, refused = write_manifests(objects, tmp_path / "imported")
            assert not refused and len(written) == 22
            plan = plan_from_tree(adopting, tmp_path / "imported", backend=backend)
            assert plan.errors == () and plan.operations == (), [o.address for o in plan.operations]
            # A second import finds nothing new: every object is mapped now.
            assert objects_to_import(adopting, [], backend)[1] == set()
    finally:
        made.close()
        adopting.close()
        app.state.emulator.close()


def test_a_first_apply_against_an_account_holding_the_objects_says_import_it(tmp_path: Path, emulator_server):
    # Mutation caught: creating a second customer with the same ingest alias (or a second
    # product of the same name) instead of refusing.
    served = emulator_server
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    env = {"BILLING_RECONCILER_BACKEND": "metronome", "METRONOME_BASE_URL": served.base_url,
           "METRONOME_BEARER_TOKEN": served.token}
    for store in ("first", "second"):
        env["BILLING_RECONCILER_STORE"] = f"sqlite:///{tmp_path}/{store}.db"
        assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
        result = run_cli("apply", "--auto-approve", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "Customer/acme: exists: the account already holds Customer" in result.stderr
    assert "ingest alias 'acme-prod'" in result.stderr and "import it" in result.stderr
    with served.client(timeout=30) as http:
        assert len(http.get("/v1/customers").json()["data"]) == 4  # nothing was made twice
