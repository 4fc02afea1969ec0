"""Checks the product pages state (issue 13, last bullet) that need the store: archiving a
customer's billing provider configuration that an active contract bills through, and replacing a
billable metric that products still use. (The manifest-only checks are bad-manifest cases.)"""

from __future__ import annotations

import pytest

from billing_reconciler.store.store import Store

from .support import Account, converge, customer, make_plan, ops_of, small_account


@pytest.fixture
def applied(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/store/state.db")
    s.init()
    account = Account(tmp_path, small_account(1))
    account.docs[account._index("Customer/c1")] = customer("c1", configs=("aws", "stripe"))
    converge(s, account)
    yield s, account
    s.close()


def test_archiving_the_configuration_an_active_contract_bills_through_is_refused(applied):
    store, account = applied
    # In the manifests, a contract naming a configuration its customer lacks fails validation
    # (bad-manifest cases). A contract the manifests no longer manage still bills through it:
    account.remove("Contract/c1-2024")  # unmanaged (not pruned), active, bills through aws
    account.docs[account._index("Customer/c1")] = customer("c1", configs=("stripe",))
    plan = make_plan(store, account)
    assert plan.errored and not ops_of(plan, "archive_customer_billing_provider_configurations")
    (error,) = plan.errors
    assert "'aws' was removed, but Contract/c1-2024 bills through it" in str(error)
    assert "Customer/c1" in str(error)
    # A configuration no contract uses is archived.
    account.docs[account._index("Customer/c1")] = customer("c1", configs=("aws",))
    plan = make_plan(store, account)
    assert not plan.errored and ops_of(plan, "archive_customer_billing_provider_configurations")


def test_replacing_a_metric_without_the_products_using_it_is_refused(applied):
    store, account = applied
    plan = make_plan(store, account, replace=("BillableMetric/api-calls",))
    assert plan.errored and not plan.operations
    message = str(plan.errors[0])
    assert "Product/api-calls use" in message and "--replace Product/api-calls" in message
    account.spec("BillableMetric/api-calls")["aggregation_type"] = "UNIQUE"
    account.spec("BillableMetric/api-calls")["aggregation_key"] = "user"
    plan = make_plan(store, account, replace=("BillableMetric/api-calls", "Product/api-calls"))
    assert not plan.errored
    assert [o.op for o in plan.operations if o.address == "BillableMetric/api-calls"] == [
        "archive_billable_metric", "create_billable_metric"]
