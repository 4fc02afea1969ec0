"""`migrate` end to end (issue 14.4), the CLI as a subprocess on SQLite and PostgreSQL: the example
account's contract (on cloud-2024 through its rate_card_alias) is moved to cloud-2025 on
2025-02-01; the plan creates the new contract with transition.from_contract_id and ends the old
one; after apply, usage before the transition is rated on the old card and after it on the new one."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

T = "2025-02-01T00:00:00Z"
NEW = "widgetsexpress-2024-20250201"
NEW_FILE = f"manifests/customers/{NEW}.yaml"
CLOUD_2025 = """apiVersion: billing-reconciler/v1
kind: RateCard
metadata:
  name: cloud-2025
spec:
  name: Cloud 2025
  rates:
    - {product: compute-hours, starting_at: 2025-01-01T00:00:00Z, entitled: true, rate_type: FLAT, price: 7}
    - {product: data-export, starting_at: 2025-01-01T00:00:00Z, entitled: true, rate_type: FLAT, price: 6}
"""
EVENTS = "\n".join(json.dumps(e) for e in [
    {"transaction_id": "jan-compute", "customer_id": "widgets-express-prod", "event_type": "compute",
     "timestamp": "2025-01-10T00:00:00Z", "properties": {"region": "US", "hours": 1200}},
    {"transaction_id": "jan-export", "customer_id": "widgets-express-prod", "event_type": "data_export",
     "timestamp": "2025-01-11T00:00:00Z", "properties": {"region": "US", "gb": 10}},
    {"transaction_id": "feb-compute", "customer_id": "widgets-express-prod", "event_type": "compute",
     "timestamp": T, "properties": {"region": "US", "hours": 1500}},
    {"transaction_id": "feb-export", "customer_id": "widgets-express-prod", "event_type": "data_export",
     "timestamp": "2025-02-11T00:00:00Z", "properties": {"region": "US", "gb": 10}},
]) + "\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    if request.param == "sqlite":
        return {}
    return {"BILLING_RECONCILER_STORE": request.getfixturevalue("postgres_url"),
            "BILLING_RECONCILER_EVENTS_DB": str(tmp_path / "events.duckdb")}


def test_migrate_plans_a_transition_and_rates_each_side_on_its_card(example_tree, env):
    def cli(*args, check=True):
        return run_cli(*args, cwd=example_tree, env=env, check=check)

    cli("init")
    cli("apply", "--auto-approve")
    (example_tree / "manifests" / "catalog" / "cloud-2025.yaml").write_text(CLOUD_2025)
    migrate = ("migrate", "--from-rate-card", "cloud-2024", "--to-rate-card", "cloud-2025", "--at", T)

    dry = cli(*migrate, "--dry-run")
    assert f"Would write {NEW_FILE}: Contract/{NEW} (SUPERSEDE of Contract/widgetsexpress-2024" in dry.stdout
    assert not (example_tree / NEW_FILE).exists()
    wrote = cli(*migrate)
    assert f"Wrote {NEW_FILE}" in wrote.stdout and "not carried: commits[prepaid-2024]" in wrote.stdout
    clash = cli(*migrate, check=False)
    assert clash.returncode == 1 and f"Contract/{NEW} already exists" in clash.stderr
    assert "Traceback" not in clash.stderr

    plan = json.loads(cli("plan", "--format", "json").stdout)
    ops = {(o["op"], o["address"]): o for o in plan["operations"]}
    create = ops[("create_contract", f"Contract/{NEW}")]["request"]["body"]
    end = ops[("edit_contract", "Contract/widgetsexpress-2024")]["request"]["body"]
    assert create["transition"] == {"from_contract_id": end["contract_id"], "type": "SUPERSEDE"}
    assert end["update_contract_end_date"] == T
    # The remaining platform fees (quarterly from 2024-11-01: Feb 1, May 1, Aug 1) move to the new contract.
    assert [i["timestamp"] for i in create["scheduled_charges"][0]["schedule"]["schedule_items"]] == [
        T, "2025-05-01T00:00:00Z", "2025-08-01T00:00:00Z"]
    text = cli("plan").stdout
    assert "transition" in text and "ending_before" in text
    cli("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode", check=False).returncode == 0

    (example_tree / "events.jsonl").write_text(EVENTS)
    cli("ingest", "events.jsonl")
    out = json.loads(cli("invoices", "--customer", "widgetsexpress", "--start", "2025-01-01T00:00:00Z",
                         "--end", "2025-03-01T00:00:00Z", "--format", "json").stdout)
    got = sorted((i["contract"], i["type"], i["start_timestamp"][:10], i["subtotal"], i["total"])
                 for i in out["invoices"])
    assert got == sorted([
        # January on the old contract and cloud-2024: 1200 h = 1000 × 10 + 200 × 8 = 11600 (cloud:
        # paid by the prepaid commit) + 10 GB × 9 = 90: subtotal 11690, total 90. Its Feb 1
        # platform fee is no longer on it (the old contract stopped billing at the transition).
        ("widgetsexpress-2024", "USAGE", "2025-01-01", "11690", "90"),
        # From Feb 1 on the new contract and cloud-2025: its first platform fee, 100000, on its own
        # invoice (no usage period of the new contract ends on Feb 1) ...
        (NEW, "SCHEDULED", "2025-02-01", "100000", "100000"),
        # ... and February usage: 1500 h × 7 = 10500 + 10 GB × 6 = 60 = 10560, nothing to draw
        # from (commits are not carried by a SUPERSEDE).
        (NEW, "USAGE", "2025-02-01", "10560", "10560"),
    ])


def test_what_migrate_carries_over_and_which_contracts_it_takes(tmp_path):
    # The library call the CLI wires, on hand-made contracts (tests/plan/support's account).
    # Catches: an ended contract or another card's migrated, the alias not counted, --customer
    # ignored, an ended override carried, an override starting before the new contract, a
    # commit-specific override carried without its commit, commits carried, past charges carried.
    from billing_reconciler.manifests import load_manifests
    from billing_reconciler.migrate import plan_migration
    from billing_reconciler.timeutil import parse_timestamp
    from tests.plan.support import Account, catalog, contract, customer, doc

    at = "2025-03-01T00:00:00Z"
    docs = catalog() + [doc("RateCard", "cloud-2025", {"name": "Cloud 2025", "rates": [
        {"product": "api-calls", "starting_at": "2024-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT",
         "price": 0.4}]})]
    for name in ("a", "b", "c", "d"):
        docs.append(customer(name))
    full = contract("a-2024", "a")  # commit, override from 2024-11-01, quarterly fee, US filter
    full["spec"]["overrides"] += [
        {"key": "ended", "starting_at": "2024-11-01T00:00:00Z", "ending_before": "2025-01-01T00:00:00Z",
         "applicable_product_tags": ["cloud"], "type": "MULTIPLIER", "multiplier": 0.5},
        {"key": "on-commit", "starting_at": "2024-11-01T00:00:00Z", "type": "MULTIPLIER", "multiplier": 0.8,
         "is_commit_specific": True, "override_specifiers": [{"commits": ["prepaid"]}]}]
    aliased = contract("b-2024", "b")
    del aliased["spec"]["rate_card"]
    aliased["spec"]["rate_card_alias"] = "cloud-standard"  # cloud-2024's alias
    ended = contract("c-2024", "c")
    ended["spec"]["ending_before"] = "2025-02-01T00:00:00Z"
    other = contract("d-2024", "d")
    other["spec"]["rate_card"] = "cloud-2025"
    docs += [full, aliased, ended, other]
    loaded = load_manifests(Account(tmp_path, docs).write().manifests_dir)
    assert loaded.ok, loaded.problems

    migration = plan_migration(loaded.manifests, "cloud-2024", "cloud-2025", parse_timestamp(at), "RENEWAL")
    assert [n.key for n in migration.contracts] == ["a-2024-20250301", "b-2024-20250301"]
    new = migration.contracts[0].spec
    assert new["transition"] == {"from": "a-2024", "type": "RENEWAL"}
    assert (new["customer"], new["rate_card"], new["starting_at"]) == ("a", "cloud-2025", at)
    assert new["billing_provider_configuration"] == {"billing_provider_configuration": "aws"}
    assert new["usage_filter"] == {"group_key": "region", "group_values": ["US"]}  # in force at T
    assert [(o["key"], o["starting_at"]) for o in new["overrides"]] == [("cloud-discount", at)]
    # The quarterly fee (2024-11-01, 2025-02-01, 2025-05-01, 2025-08-01): the two after T remain.
    (fee,) = new["scheduled_charges"]
    assert [i["timestamp"] for i in fee["schedule"]["schedule_items"]] == ["2025-05-01T00:00:00Z",
                                                                             "2025-08-01T00:00:00Z"]
    assert "commits" not in new and "credits" not in new
    assert "overrides[on-commit] (specific to commits)" in migration.contracts[0].left_out
    only_b = plan_migration(loaded.manifests, "cloud-2024", "cloud-2025", parse_timestamp(at), customers=["b"])
    assert [n.key for n in only_b.contracts] == ["b-2024-20250301"]
