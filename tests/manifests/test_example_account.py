from __future__ import annotations

from pathlib import Path

from billing_reconciler.manifests import load_manifests

from ..conftest import EXAMPLE_MANIFESTS, run_cli


def test_example_account_is_valid():
    result = load_manifests(EXAMPLE_MANIFESTS)
    assert result.problems == []
    addresses = {m.address for m in result.manifests}
    assert {"Customer/widgetsexpress", "Contract/widgetsexpress-2024", "RateCard/cloud-2024",
            "Contract/acme-pro-2025", "Contract/brightlabs-pool-2025",
            "Contract/copperworks-seats-2025"} <= addresses


def test_widgetsexpress_contract_matches_the_provisioning_page():
    docs = {m.address: m for m in load_manifests(EXAMPLE_MANIFESTS).manifests}
    contract = docs["Contract/widgetsexpress-2024"].spec
    commit = contract["commits"][0]
    assert commit["type"] == "PREPAID"
    assert commit["access_schedule"]["schedule_items"][0]["amount"] == 1000000
    assert commit["applicable_product_tags"] == ["cloud"]
    charge = contract["scheduled_charges"][0]["schedule"]["recurring_schedule"]
    assert (charge["frequency"], charge["unit_price"], charge["amount_distribution"]) == ("QUARTERLY", 100000, "EACH")
    assert contract["usage_statement_schedule"] == {"frequency": "MONTHLY", "day": "CONTRACT_START"}
    assert contract["scheduled_charges_on_usage_invoices"] == "ALL"
    assert contract["usage_filter"]["group_values"] == ["US"]
    customer = docs["Customer/widgetsexpress"].spec
    assert customer["custom_fields"] == {"sfdc_account_id": "sfdc1001"}
    assert customer["customer_billing_provider_configurations"][0]["billing_provider"] == "aws_marketplace"


def test_validate_command_passes_on_example_account(example_tree: Path):
    result = run_cli("validate", cwd=example_tree)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Valid: 22 objects in 5 files")
