"""Plans built by hand for renderer tests: they pin the views, not the planner."""

from __future__ import annotations

import re
from typing import Any

from billing_reconciler.manifests.errors import Problem
from billing_reconciler.plan.operations import Action, Change, Operation, make_request, ref
from billing_reconciler.plan.plan import Drift, Plan


def op(name: str, address: str, action: str, body: dict[str, Any], *, changes=(), reason="changed in manifests",
       drift: bool = False) -> Operation:
    return Operation(op=name, address=address, action=Action(action), request=make_request(name, body),
                     changes=tuple(changes), reason=reason, drift=drift)


def full_plan() -> Plan:
    """Every kind of operation and warning, with a secret in a billing provider configuration."""
    product = {"name": "API calls", "type": "USAGE", "billable_metric_id": ref("BillableMetric/api-calls"),
               "tags": ["cloud"]}
    stripe = {"billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
              "configuration": {"stripe_customer_id": "cus_123", "api_key": "sk_live_SECRET"}, "key": "stripe"}
    return Plan(
        lineage="6f1c0d2e-0000-4000-8000-000000000001", serial=7, manifests_digest="sha256:abc",
        operations=(
            op("create_billable_metric", "BillableMetric/api-calls", "create",
               {"name": "API calls", "aggregation_type": "COUNT", "group_keys": [["region"]]},
               changes=[Change("", None, {"name": "API calls"})], reason="new in manifests"),
            op("create_product", "Product/api-calls", "create", product,
               changes=[Change("", None, product)], reason="new in manifests"),
            op("set_customer_name", "Customer/acme", "update", {"customer_id": "cust-1", "name": "Acme Inc."},
               changes=[Change("name", "Acme", "Acme Inc.")]),
            op("set_customer_billing_provider_configurations", "Customer/acme", "update",
               {"data": [{"customer_id": "cust-1", **{k: v for k, v in stripe.items() if k != "key"}}]},
               changes=[Change("customer_billing_provider_configurations[stripe]", None, stripe)]),
            op("set_custom_field_values", "Customer/acme", "update",
               {"entity": "customer", "entity_id": "cust-1", "custom_fields": {"crm_token": "tok_SECRET"}},
               changes=[Change("custom_fields.crm_token", "tok_OLD_SECRET", "tok_SECRET")]),
            op("edit_contract", "Contract/acme-2025", "update",
               {"customer_id": "cust-1", "contract_id": "con-1",
                "remove_overrides": [{"id": "ovr-1"}],
                "add_overrides": [{"starting_at": "2025-01-01T00:00:00Z", "type": "MULTIPLIER", "multiplier": 0.9,
                                   "applicable_product_tags": ["cloud"]}],
                "archive_commits": [{"id": "com-1"}]},
               changes=[Change("overrides[cloud-discount].multiplier", 0.95, 0.9, note="replace"),
                        Change("commits[old-prepaid]", {"key": "old-prepaid", "type": "PREPAID"}, None,
                               note="archive")]),
            op("archive_customer", "Customer/globex", "replace", {"id": "cust-2"},
               reason="replace requested (--replace)"),
            op("create_customer", "Customer/globex", "replace", {"name": "Globex", "ingest_aliases": ["globex"]},
               changes=[Change("", None, {"name": "Globex"})], reason="replace requested (--replace)"),
            op("set_customer_name", "Customer/initech", "update", {"customer_id": "cust-3", "name": "Initech"},
               changes=[Change("name", "Initech (edited in the app)", "Initech")],
               reason="drifted: changed outside the manifests", drift=True),
            op("archive_rate_card", "RateCard/legacy", "archive", {"id": "rc-9"}, reason="pruned: not in manifests"),
        ),
        drift=(Drift("Customer/initech", (Change("name", "Initech (edited in the app)", "Initech"),)),),
        unmanaged=("Product/old-addon",),
    )


def refused_plan() -> Plan:
    return Plan(
        lineage="6f1c0d2e-0000-4000-8000-000000000001", serial=7, manifests_digest="sha256:abc", operations=(),
        errors=(Problem("manifests/customers/acme.yaml", 31, 3, "Contract/acme-2025",
                        "spec.scheduled_charges_on_usage_invoices",
                        "scheduled_charges_on_usage_invoices cannot be changed after Contract/acme-2025 is created "
                        "(the billing API has no update for it); end this contract and add a new Contract with a "
                        "new key"),),
    )


def impact_plan() -> Plan:
    plan = Plan(lineage="6f1c0d2e-0000-4000-8000-000000000001", serial=3, manifests_digest="sha256:abc",
                operations=(op("set_customer_name", "Customer/acme", "update", {"customer_id": "cust-1", "name": "A"},
                               changes=[Change("name", "Acme", "A")]),))
    plan.extras["invoice_impact"] = {"usage": "usage.jsonl", "events": 120, "until": "2025-02-01T00:00:00Z",
                                     "customers": [
        # acme: 45 cents cheaper; 1 cent of usage drawn from its commit both times.
        {"customer": "acme", "before": 1100090, "after": 1100045, "delta": -45,
         "subtotal": {"before": 1100091, "after": 1100046}, "drawdown": {"before": -1, "after": -1},
         "balances": [{"balance": "acme-2025/prepaid", "before": 999999, "after": 999999}]},
        # bolt: a change its $1,000 prepaid commit absorbs: the total stays 100000 (the commit's
        # invoice), usage 161160 -> 150000 cents, drawn in full: balance 100000 - 61160 = 38840 -> 50000.
        {"customer": "bolt", "before": 100000, "after": 100000, "delta": 0,
         "subtotal": {"before": 161160, "after": 150000}, "drawdown": {"before": -61160, "after": -50000},
         "balances": [{"balance": "bolt-2025/prepaid", "before": 38840, "after": 50000}]}]}
    return plan


def big_plan(objects: int, body_size: int = 2_000, ops_per_object: int = 1) -> Plan:
    operations = []
    for i in range(objects):
        for j in range(ops_per_object):
            operations.append(op("set_customer_name", f"Customer/c{i:05d}", "update",
                                 {"customer_id": f"id-{i}", "name": f"N{j}" + "x" * body_size},
                                 changes=[Change("name", "old", "new")]))
    return Plan(lineage="l", serial=1, manifests_digest="sha256:abc", operations=tuple(operations))


def check_markdown(md: str, limit: int = 65_536) -> None:
    """What a comment must never be: over the limit, or with a block left open or a table row broken."""
    assert len(md) <= limit, len(md)
    fence: str | None = None
    details = 0
    columns: int | None = None
    for number, line in enumerate(md.splitlines(), start=1):
        if fence is not None:
            if line.startswith(fence) and line.strip("`") == "":
                fence = None
            continue
        opening = re.match(r"^(`{3,})\w*$", line)
        if opening:
            fence = opening.group(1)
            columns = None
            continue
        details += line.count("<details>") - line.count("</details>")
        assert details >= 0, f"line {number}: </details> without <details>"
        if "<details>" in line:
            assert "</summary>" in line, f"line {number}: summary not closed on its line"
        if line.startswith("|"):
            cells = len(re.findall(r"(?<!\\)\|", line))
            if columns is None:
                columns = cells
            assert cells == columns, f"line {number}: {cells - 1} cells in a {columns - 1}-column table: {line}"
        else:
            columns = None
    assert fence is None, "a code fence is left open"
    assert details == 0, "a <details> block is left open"
