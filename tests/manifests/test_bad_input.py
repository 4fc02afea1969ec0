"""The bad-input corpus: every broken manifest under tests/bad_manifests/ is reported exactly.

Each directory there is a self-contained tree: a copy of a minimal valid account (see
tests/bad_manifests/README.md) with one mistake. For each, the test pins every problem the loader
reports: file, line, column, object address, field path and fragments of the message (what is
wrong and how to fix it). The list is exact, so a mistake reported twice, or a cascade of
follow-on errors, fails the test too.
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from billing_reconciler.manifests import load_manifests

from ..conftest import ROOT, run_cli

CORPUS = ROOT / "tests" / "bad_manifests"


class E(NamedTuple):
    file: str
    line: int
    column: int
    address: str | None
    path: str
    fragments: tuple[str, ...]


def e(file: str, line: int, column: int, address: str | None, path: str, *fragments: str) -> E:
    return E(file, line, column, address, path, fragments)


EXPECTED: dict[str, list[E]] = {
    'access-schedule-item-ends-before-start': [
        e('customer.yaml', 33, 28, 'Contract/acme-2024', 'spec.commits[0].access_schedule.schedule_items[0].ending_before', 'ending_before (2023-11-01T00:00:00Z) must be after starting_at (2024-11-01T00:00:00Z)', 'time windows are [starting_at, ending_before)'),
    ],
    'bad-utf8': [
        e('latin1.yaml', 4, 12, None, '', 'file is not UTF-8 text (byte 0xe9: invalid continuation byte)', 'save it as UTF-8'),
    ],
    'contract-ends-before-start': [
        e('customer.yaml', 21, 18, 'Contract/acme-2024', 'spec.ending_before', 'ending_before (2024-10-01T00:00:00Z) must be after starting_at (2024-11-01T00:00:00Z)', 'time windows are [starting_at, ending_before)'),
    ],
    'dangling-billable-metric': [
        e('catalog.yaml', 21, 20, 'Product/api-calls', 'spec.billable_metric', 'BillableMetric/api-call does not exist', "did you mean 'api-calls'?"),
    ],
    'dangling-billing-provider-configuration': [
        e('customer.yaml', 23, 37, 'Contract/acme-2024', 'spec.billing_provider_configuration.billing_provider_configuration', "Customer/acme has no billing provider configuration 'aws-prod'", "did you mean 'aws'?"),
    ],
    'dangling-commit-in-override-specifier': [
        e('customer.yaml', 43, 21, 'Contract/acme-2024', 'spec.overrides[0].override_specifiers[0].commits[0]', "no commits item has key 'prepaid-2025' on this contract", "did you mean 'prepaid-2024'?"),
    ],
    'dangling-transition-contract': [
        e('customer.yaml', 89, 11, 'Contract/acme-2025', 'spec.transition.from', 'Contract/acme-2042 does not exist'),
    ],
    'transition-from-another-customers-contract': [
        e('customer.yaml', 96, 11, 'Contract/globex-2025', 'spec.transition.from',
          'Contract/acme-2024 belongs to Customer/acme, not to Customer/globex', 'same customer'),
    ],
    'usage-filter-group-key-not-on-metric': [
        e('customer.yaml', 23, 16, 'Contract/acme-2024', 'spec.usage_filter.group_key',
          "group key 'country' is not a group key of BillableMetric/api-calls", 'add [country] to their group_keys'),
    ],
    'contract-billing-provider-not-on-customer': [
        e('customer.yaml', 23, 23, 'Contract/acme-2024', 'spec.billing_provider_configuration.billing_provider',
          'Customer/acme has no billing provider configuration for stripe/direct_to_billing_provider',
          'it has: aws (aws_marketplace/direct_to_billing_provider)'),
    ],
    'dangling-customer': [
        e('customer.yaml', 18, 13, 'Contract/acme-2024', 'spec.customer', 'Customer/acme-corp does not exist', "did you mean 'acme'?"),
    ],
    'dangling-product-in-commit': [
        e('customer.yaml', 27, 16, 'Contract/acme-2024', 'spec.commits[0].product', 'Product/prepaid-comit does not exist', "did you mean 'prepaid-commit'?"),
    ],
    'dangling-product-in-override': [
        e('customer.yaml', 41, 16, 'Contract/acme-2024', 'spec.overrides[0].product', 'Product/api-call does not exist', "did you mean 'api-calls'?"),
    ],
    'dangling-product-in-rate': [
        e('catalog.yaml', 58, 16, 'RateCard/cloud-2024', 'spec.rates[0].product', 'Product/api-calls-v2 does not exist', "did you mean 'api-calls'?"),
    ],
    'dangling-product-in-scheduled-charge': [
        e('customer.yaml', 46, 16, 'Contract/acme-2024', 'spec.scheduled_charges[0].product', 'Product/platform-fees does not exist', "did you mean 'platform-fee'?"),
    ],
    'dangling-product-in-subscription': [
        e('customer.yaml', 63, 18, 'Contract/acme-2024', 'spec.subscriptions[0].subscription_rate.product', 'Product/pro-plans does not exist', "did you mean 'pro-plan'?"),
    ],
    'dangling-rate-card': [
        e('customer.yaml', 19, 14, 'Contract/acme-2024', 'spec.rate_card', 'RateCard/cloud-2042 does not exist', "did you mean 'cloud-2024'?"),
    ],
    'dangling-rate-card-alias': [
        e('customer.yaml', 19, 20, 'Contract/acme-2024', 'spec.rate_card_alias', "no RateCard has alias 'cloud-standrad'", "did you mean 'cloud-standard'?"),
    ],
    'dangling-reference-in-invalid-document': [
        e('customer.yaml', 18, 13, 'Contract/acme-2024', 'spec.customer', 'Customer/acme-corp does not exist', "did you mean 'acme'?"),
        e('customer.yaml', 19, 3, 'Contract/acme-2024', 'spec.rate_crad', "unknown field 'rate_crad'", "did you mean 'rate_card'?"),
    ],
    'date-only-timestamp': [
        e('customer.yaml', 21, 18, 'Contract/acme-2024', 'spec.ending_before', "'2025-11-01' is a date without a time", 'write a UTC timestamp: 2025-11-01T00:00:00Z'),
    ],
    'duplicate-billing-provider-configuration-key': [
        e('customer.yaml', 12, 12, 'Customer/acme', 'spec.customer_billing_provider_configurations[1].key', "duplicate key 'aws' (also at customer_billing_provider_configurations[0])", 'each item of customer_billing_provider_configurations needs its own key'),
    ],
    'duplicate-commit-key': [
        e('customer.yaml', 38, 12, 'Contract/acme-2024', 'spec.commits[1].key', "duplicate key 'prepaid-2024' (also at commits[0])", 'each item of commits needs its own key'),
    ],
    'repeated-schedule-item': [
        e('customer.yaml', 38, 13, 'Contract/acme-2024', 'spec.commits[0].invoice_schedule.schedule_items[1]', 'schedule item 1 repeats item 0', 'merge them into one item (add the amounts)'),
    ],
    'duplicate-name-across-files': [
        e('more-customers.yaml', 4, 9, 'Customer/acme', 'metadata.name', 'duplicate key: Customer/acme is also defined in customer.yaml (document 1)', 'keys must be unique per kind — rename one'),
    ],
    'duplicate-override-key': [
        e('customer.yaml', 44, 12, 'Contract/acme-2024', 'spec.overrides[1].key', "duplicate key 'cloud-discount' (also at overrides[0])", 'each item of overrides needs its own key'),
    ],
    'empty-spec': [
        e('catalog.yaml', 38, 1, 'Product/platform-fee', 'spec', 'empty', 'it needs at least name, type'),
    ],
    'individual-allocation-without-seat-based': [
        e('customer.yaml', 76, 21, 'Contract/acme-2024', 'spec.recurring_credits[0].subscription_config.allocation', 'allocation INDIVIDUAL needs a SEAT_BASED subscription (quantity_management_mode: SEAT_BASED)'),
    ],
    'ingest-alias-shared-by-two-customers': [
        e('more-customers.yaml', 7, 34, 'Customer/acme-eu', 'spec.ingest_aliases[1]', "ingest alias 'acme-prod' is also used by Customer/acme", 'an alias identifies one customer — remove it from one of them'),
    ],
    'invalid-calendar-date': [
        e('customer.yaml', 20, 16, 'Contract/acme-2024', 'spec.starting_at', "'2025-02-31T10:00:00Z' is not a valid date: February 2025 has 28 days", 'write a real date and time in UTC'),
    ],
    'invalid-item-key-pattern': [
        e('customer.yaml', 25, 12, 'Contract/acme-2024', 'spec.commits[0].key', "'Prepaid 2024' is not a valid key", "use lower-case letters, digits"),
    ],
    'invalid-key-pattern': [
        e('customer.yaml', 16, 9, 'Contract/Acme_2024', 'metadata.name', "'Acme_2024' is not a valid key", "use lower-case letters, digits"),
    ],
    'kind-not-text': [
        e('customer.yaml', 2, 1, None, 'kind', 'kind must be one of BillableMetric, Product, RateCard, Customer, Contract', 'got a list'),
        e('customer.yaml', 18, 13, 'Contract/acme-2024', 'spec.customer', 'Customer/acme does not exist', 'there are no Customer manifests'),
    ],
    'missing-api-version': [
        e('customer.yaml', 1, 1, 'Customer/acme', '', "missing required field 'apiVersion'", 'add apiVersion: billing-reconciler/v1'),
    ],
    'missing-kind': [
        e('customer.yaml', 1, 1, None, '', "missing required field 'kind' (one of BillableMetric, Product, RateCard, Customer, Contract)"),
        e('customer.yaml', 17, 13, 'Contract/acme-2024', 'spec.customer', 'Customer/acme does not exist', 'there are no Customer manifests'),
    ],
    'missing-metadata': [
        e('customer.yaml', 1, 1, 'Customer', '', "missing required field 'metadata'", 'it needs at least name'),
        e('customer.yaml', 16, 13, 'Contract/acme-2024', 'spec.customer', 'Customer/acme does not exist', 'there are no Customer manifests'),
    ],
    'missing-required-field': [
        e('customer.yaml', 17, 1, 'Contract/acme-2024', 'spec.customer', "missing required field 'customer'"),
    ],
    'missing-required-nested-field': [
        e('customer.yaml', 45, 7, 'Contract/acme-2024', 'spec.scheduled_charges[0].product', "missing required field 'product'"),
    ],
    'missing-spec': [
        e('catalog.yaml', 33, 1, 'Product/platform-fee', '', "missing required field 'spec'", 'it needs at least name, type'),
    ],
    'multiplier-override-without-multiplier': [
        e('customer.yaml', 39, 7, 'Contract/acme-2024', 'spec.overrides[0]', 'a MULTIPLIER override needs multiplier (0.95 = 5% off)'),
    ],
    'naive-timestamp': [
        e('customer.yaml', 20, 16, 'Contract/acme-2024', 'spec.starting_at', "'2024-11-01T00:00:00' has no timezone", 'write it in UTC with a Z suffix: 2024-11-01T00:00:00Z'),
    ],
    'negative-price': [
        e('catalog.yaml', 62, 14, 'RateCard/cloud-2024', 'spec.rates[0].price', 'must not be negative, got -0.5'),
    ],
    'nested-yml-file': [
        e('customers/eu/acme-eu.yml', 7, 3, 'Customer/acme-eu', 'spec.ingest_alias', "unknown field 'ingest_alias'", "did you mean 'ingest_aliases'?"),
    ],
    'non-mapping-document': [
        e('customer.yaml', 13, 1, None, '', 'a manifest document must be a mapping with apiVersion, kind, metadata and spec'),
    ],
    'non-positive-quantity': [
        e('customer.yaml', 53, 21, 'Contract/acme-2024', 'spec.scheduled_charges[0].schedule.recurring_schedule.quantity', 'quantity must be greater than 0, got 0'),
    ],
    'non-whole-cents': [
        e('customer.yaml', 31, 21, 'Contract/acme-2024', 'spec.commits[0].access_schedule.schedule_items[0].amount', '1000000.5 is not a whole number of cents', 'use 1000000 or 1000001'),
    ],
    'number-as-timestamp': [
        e('catalog.yaml', 59, 20, 'RateCard/cloud-2024', 'spec.rates[0].starting_at', 'expected a timestamp such as 2024-11-01T00:00:00Z, got 2024'),
    ],
    'overlapping-aliases-on-one-card': [
        e('catalog.yaml', 58, 20, 'RateCard/cloud-2024', 'spec.aliases[1].starting_at', 'this alias overlaps aliases[0] in time', 'end the earlier one (ending_before <= 2025-01-01T00:00:00Z) or start this one later'),
    ],
    'overlapping-rate-card-aliases': [
        e('catalog-2025.yaml', 8, 13, 'RateCard/cloud-2025', 'spec.aliases[0].name', "alias 'cloud-standard' also names RateCard/cloud-2024 (always)", 'an alias selects one rate card at a time'),
    ],
    'overlapping-rates': [
        e('catalog.yaml', 64, 20, 'RateCard/cloud-2024', 'spec.rates[1].starting_at', 'overlaps rates[0] in time', 'end the earlier one (ending_before <= 2024-06-01T00:00:00Z) or start this one later'),
    ],
    'override-ends-before-start': [
        e('customer.yaml', 41, 22, 'Contract/acme-2024', 'spec.overrides[0].ending_before', 'ending_before (2024-11-01T00:00:00Z) must be after starting_at (2024-11-01T00:00:00Z)', 'time windows are [starting_at, ending_before)'),
    ],
    'postpaid-commit-with-two-access-items': [
        e('customer.yaml', 30, 9, 'Contract/acme-2024', 'spec.commits[0].access_schedule.schedule_items', 'a POSTPAID commit has exactly one access schedule item'),
    ],
    'postpaid-commit-without-invoice-schedule': [
        e('customer.yaml', 25, 7, 'Contract/acme-2024', 'spec.commits[0]', 'a POSTPAID commit needs an invoice_schedule with exactly one schedule item'),
    ],
    'product-group-keys-not-on-metric': [
        e('catalog.yaml', 22, 3, 'Product/api-calls', 'spec.pricing_group_key', "group keys ['country'] must together be one group_keys entry of BillableMetric/api-calls", 'add [country] to its group_keys'),
    ],
    'rate-in-custom-credit-type-without-conversion': [
        e('catalog.yaml', 63, 20, 'RateCard/cloud-2024', 'spec.rates[0].credit_type', "priced in 'seat credits'",
          "no conversion of it into 'USD (cents)'", 'add credit_type_conversions'),
    ],
    'rate-card-alias-not-active-at-contract-start': [
        e('customer.yaml', 19, 20, 'Contract/acme-2024', 'spec.rate_card_alias', "alias 'cloud-standard' names no rate card on the contract's starting_at (2024-11-01T00:00:00Z)", 'it names RateCard/cloud-2024 from 2025-01-01T00:00:00Z on'),
    ],
    'rate-ends-before-start': [
        e('catalog.yaml', 60, 22, 'RateCard/cloud-2024', 'spec.rates[0].ending_before', 'ending_before (2023-01-01T00:00:00Z) must be after starting_at (2024-01-01T00:00:00Z)', 'time windows are [starting_at, ending_before)'),
    ],
    'recurring-schedule-ends-before-start': [
        e('customer.yaml', 50, 26, 'Contract/acme-2024', 'spec.scheduled_charges[0].schedule.recurring_schedule.ending_before', 'ending_before (2024-11-01T00:00:00Z) must be after starting_at (2024-11-01T00:00:00Z)', 'time windows are [starting_at, ending_before)'),
    ],
    'reference-of-wrong-type': [
        e('customer.yaml', 18, 3, 'Contract/acme-2024', 'spec.customer', 'expected text, got a list'),
    ],
    'rollover-fraction-above-one': [
        e('customer.yaml', 29, 26, 'Contract/acme-2024', 'spec.commits[0].rollover_fraction', 'must be a fraction between 0 and 1, got 1.5'),
    ],
    'scalar-document': [
        e('notes.yaml', 1, 1, None, '', 'a manifest document must be a mapping with apiVersion, kind, metadata and spec'),
    ],
    'sensitive-path-not-under-spec': [
        e('customer.yaml', 6, 7, 'Customer/acme', 'metadata.sensitive[0]', "'custom_fields.crm_account' is not a path to a spec field", 'write spec.FIELD[.FIELD...]'),
    ],
    'spec-not-a-mapping': [
        e('catalog.yaml', 37, 1, 'Product/platform-fee', 'spec', 'expected a mapping of fields, got a list'),
    ],
    'subscription-id-matches-no-subscription': [
        e('customer.yaml', 75, 26, 'Contract/acme-2024', 'spec.recurring_credits[0].subscription_config.subscription_id', "'pro-plan-montly' matches no subscription temporary_id on this contract", "(temporary_ids: pro-plan-monthly)", 'set temporary_id on the subscription it belongs to'),
    ],
    'subscription-id-mistake-beside-other-errors': [
        e('customer.yaml', 66, 7, 'Contract/acme-2024', 'spec.recurring_credits[0].priority', "missing required field 'priority'"),
        e('customer.yaml', 68, 7, 'Contract/acme-2024', 'spec.recurring_credits[0].priorty', "unknown field 'priorty'; did you mean 'priority'?"),
        e('customer.yaml', 75, 26, 'Contract/acme-2024', 'spec.recurring_credits[0].subscription_config.subscription_id', "'pro-plan-montly' matches no subscription temporary_id on this contract"),
    ],
    'subscription-rate-missing-on-rate-card': [
        e('customer.yaml', 62, 7, 'Contract/acme-2024', 'spec.subscriptions[0].subscription_rate', 'RateCard/cloud-2024 has no SUBSCRIPTION rate for product pro-plan billed ANNUAL', 'add that rate to the card or pick one it has'),
    ],
    'sum-metric-without-aggregation-key': [
        e('catalog.yaml', 10, 21, 'BillableMetric/api-calls', 'spec.aggregation_type', 'SUM needs aggregation_key: the event property to aggregate'),
    ],
    'tiered-override-without-explicit-prioritization': [
        e('customer.yaml', 42, 13, 'Contract/acme-2024', 'spec.overrides[0].type', 'TIERED overrides need multiplier_override_prioritization: EXPLICIT on the contract'),
    ],
    'unknown-api-version': [
        e('customer.yaml', 1, 13, 'Customer/acme', 'apiVersion', "unknown apiVersion 'billing-reconciler/v2'", 'use billing-reconciler/v1'),
    ],
    'unknown-deep-field': [
        e('customer.yaml', 54, 11, 'Contract/acme-2024', 'spec.scheduled_charges[0].schedule.recurring_schedule.amount_distrbution', "unknown field 'amount_distrbution'", "did you mean 'amount_distribution'?"),
    ],
    'unknown-envelope-field': [
        e('customer.yaml', 5, 1, 'Customer/acme', 'specs', "unknown field 'specs'", "did you mean 'spec'?"),
    ],
    'unknown-kind': [
        e('customer.yaml', 2, 7, 'Custmer/acme', 'kind', "unknown kind 'Custmer'", "did you mean 'Customer'?"),
    ],
    'unknown-metadata-field': [
        e('customer.yaml', 17, 3, 'Contract/acme-2024', 'metadata.lables', "unknown field 'lables'", "did you mean 'labels'?"),
    ],
    'unknown-nested-field': [
        e('customer.yaml', 44, 7, 'Contract/acme-2024', 'spec.overrides[0].priorty', "unknown field 'priorty'", "did you mean 'priority'?"),
    ],
    'unknown-spec-field': [
        e('customer.yaml', 20, 3, 'Contract/acme-2024', 'spec.net_payment_term_days', "unknown field 'net_payment_term_days'", "did you mean 'net_payment_terms_days'?"),
    ],
    'unquoted-numeric-secret': [
        e('customer.yaml', 9, 24, 'Customer/acme', 'spec.custom_fields.billing_api_token', 'expected text, got a number (not shown: the field is sensitive); put the value in quotes'),
    ],
    'usage-product-without-metric': [
        e('catalog.yaml', 18, 1, 'Product/api-calls', 'spec', 'a USAGE product needs billable_metric: the key of the BillableMetric it is priced on'),
    ],
    'wrong-enum-billing-provider': [
        e('customer.yaml', 10, 25, 'Customer/acme', 'spec.customer_billing_provider_configurations[0].billing_provider', "'aws-marketplace' is not allowed", "use one of 'aws_marketplace', 'azure_marketplace'", "did you mean 'aws_marketplace'?"),
    ],
    'wrong-enum-frequency': [
        e('customer.yaml', 51, 22, 'Contract/acme-2024', 'spec.scheduled_charges[0].schedule.recurring_schedule.frequency', "'QUATERLY' is not allowed", "use one of 'MONTHLY', 'QUARTERLY', 'SEMI_ANNUAL' or 'ANNUAL'", "did you mean 'QUARTERLY'?"),
    ],
    'wrong-enum-value': [
        e('customer.yaml', 26, 13, 'Contract/acme-2024', 'spec.commits[0].type', "'PREPAYED' is not allowed", "use one of 'PREPAID' or 'POSTPAID'", "did you mean 'PREPAID'?"),
    ],
    'wrong-type-boolean': [
        e('catalog.yaml', 60, 17, 'RateCard/cloud-2024', 'spec.rates[0].entitled', "expected true or false, got 'maybe'"),
    ],
    'wrong-type-list': [
        e('customer.yaml', 7, 19, 'Customer/acme', 'spec.ingest_aliases', "expected a list, got 'acme-prod'", 'write [acme-prod] for a list of one'),
    ],
    'wrong-type-mapping': [
        e('customer.yaml', 60, 18, 'Contract/acme-2024', 'spec.subscriptions[0].proration', 'expected a mapping of fields, got true'),
    ],
    'wrong-type-number': [
        e('customer.yaml', 20, 27, 'Contract/acme-2024', 'spec.net_payment_terms_days', "expected a number, got 'thirty'"),
    ],
    'wrong-type-text': [
        e('customer.yaml', 6, 9, 'Customer/acme', 'spec.name', 'expected text, got 42', "quote it if it is text: '42'"),
    ],
    'yaml-duplicate-mapping-key': [
        e('customer.yaml', 7, 3, None, '', "YAML syntax error: duplicate key 'name': the mapping starting at line 6 already has it", 'a key may appear only once — remove or rename one'),
    ],
    'yaml-syntax-error': [
        e('customer.yaml', 8, 43, None, '', "YAML syntax error: expected ',' or ']', but got ':'", "flow sequence that starts at line 7, column 19"),
    ],
    'yaml-tab-indentation': [
        e('customer.yaml', 7, 1, None, '', "found character '\\t' that cannot start any token", 'indent with spaces, YAML does not allow tabs'),
    ],
}


def load_case(name: str, monkeypatch: pytest.MonkeyPatch):
    # Paths are shown relative to the working directory: run from inside the case.
    monkeypatch.chdir(CORPUS / name)
    return load_manifests(".")


def test_corpus_has_a_case_for_every_directory_and_enough_of_them():
    directories = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert directories == sorted(EXPECTED)
    assert len(directories) >= 45


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_is_reported_at_the_mistake(name: str, monkeypatch: pytest.MonkeyPatch):
    result = load_case(name, monkeypatch)
    got = [(p.file, p.line, p.column, p.address, p.path) for p in result.problems]
    assert got == [(x.file, x.line, x.column, x.address, x.path) for x in EXPECTED[name]], \
        "\n".join(str(p) for p in result.problems)
    for problem, expected in zip(result.problems, EXPECTED[name]):
        for fragment in expected.fragments:
            assert fragment in problem.message, f"{fragment!r} not in {problem.message!r}"


def test_base_account_of_the_corpus_is_valid(monkeypatch: pytest.MonkeyPatch):
    """Every case is _base plus one mistake; _base itself must load cleanly."""
    result = load_case("_base", monkeypatch)
    assert result.problems == []
    assert len(result.manifests) == 8


def test_several_broken_files_are_all_reported_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Broken files with different kinds of mistake: one run reports every one of them.
    tree = tmp_path / "manifests"
    tree.mkdir()
    shutil.copy(CORPUS / "dangling-billable-metric" / "catalog.yaml", tree / "catalog.yaml")
    shutil.copy(CORPUS / "wrong-enum-value" / "customer.yaml", tree / "customer.yaml")
    shutil.copy(CORPUS / "ingest-alias-shared-by-two-customers" / "more-customers.yaml", tree / "more-customers.yaml")
    (tree / "more.yaml").write_text(
        "apiVersion: billing-reconciler/v1\nkind: Contract\nmetadata: {name: other}\n"
        "spec: {customer: acme-corp, rate_card: cloud-2024, starting_at: 2024-01-01}\n")
    monkeypatch.chdir(tmp_path)
    result = load_manifests("manifests")
    assert [(p.file, p.line, p.path) for p in result.problems] == [
        ("manifests/catalog.yaml", 21, "spec.billable_metric"),
        ("manifests/customer.yaml", 26, "spec.commits[0].type"),
        ("manifests/more-customers.yaml", 7, "spec.ingest_aliases[1]"),
        ("manifests/more.yaml", 4, "spec.customer"),
        ("manifests/more.yaml", 4, "spec.starting_at"),
    ]

    cli = run_cli("--no-cache", "--manifests", "manifests", "validate", cwd=tmp_path)
    assert cli.returncode == 1
    lines = cli.stderr.splitlines()
    assert lines[:-1] == [str(p) for p in result.problems]
    assert lines[-1] == "5 problem(s) found in manifests."
    assert lines[1] == ("manifests/customer.yaml:26:13: Contract/acme-2024: spec.commits[0].type: "
                        "'PREPAYED' is not allowed; use one of 'PREPAID' or 'POSTPAID'; did you mean 'PREPAID'?")


@pytest.mark.parametrize("unreadable", ["yaml-syntax-error", "bad-utf8"])
def test_an_unreadable_file_does_not_make_references_to_its_objects_dangle(
        unreadable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The catalog cannot be read, so nothing it defines is known: the contract's references to
    # its products and rate card would all be false errors. Other problems are still reported.
    tree = tmp_path / "manifests"
    shutil.copytree(CORPUS / "wrong-enum-value", tree)
    broken = CORPUS / unreadable / ("customer.yaml" if unreadable == "yaml-syntax-error" else "latin1.yaml")
    (tree / "catalog.yaml").write_bytes(broken.read_bytes())
    monkeypatch.chdir(tmp_path)
    problems = load_manifests("manifests").problems
    assert [(p.file, p.path) for p in problems] == [
        ("manifests/catalog.yaml", ""), ("manifests/customer.yaml", "spec.commits[0].type")]
    assert "references to other manifests are checked once every file can be read" in problems[0].message


LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?:(?P<address>[A-Za-z]+(?:/\S+)?): )?"
                  r"(?:(?P<path>[\w.\[\]]+): )?(?P<message>.+)$")


def test_cli_prints_every_case_located_and_never_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    names = sorted(EXPECTED)
    for name in names:
        shutil.copytree(CORPUS / name, tmp_path / name)

    def run(name: str):
        return name, run_cli("--no-cache", "--manifests", ".", "validate", cwd=tmp_path / name)

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(pool.map(run, names))
    for name in names:
        cli = runs[name]
        assert cli.returncode == 1, (name, cli.stdout, cli.stderr)
        assert "Traceback" not in cli.stderr + cli.stdout, (name, cli.stderr)
        expected = load_case(name, monkeypatch).problems
        lines = cli.stderr.splitlines()
        assert lines[:-1] == [str(p) for p in expected], name
        assert lines[-1] == f"{len(expected)} problem(s) found in .."
        for line, problem in zip(lines, expected):
            match = LINE.match(line)
            assert match, line
            assert (match["file"], int(match["line"]), int(match["column"])) == \
                (problem.file, problem.line, problem.column)


def test_an_unquoted_numeric_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch):
    """Mutation caught: validate._validate_model quoting the input of a secret field (the
    `quote it if it is text: '8675309123'` hint printed the token)."""
    problems = load_case("unquoted-numeric-secret", monkeypatch).problems
    assert problems and all("8675309123" not in str(p) for p in problems)
