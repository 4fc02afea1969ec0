"""Customer-level commits and credits (issue 13, seed 000) through plan and apply: keyed
`commits:` / `credits:` under a Customer become customerCommits/create and customerCredits/create
requests, sent after the contracts they name, read back, and the plan after apply is empty."""

from __future__ import annotations



from .support import START, YEAR_END, Account, apply, converge, make_plan, only, small_account

SHARED = {"key": "shared-2024", "type": "PREPAID", "product": "prepaid-commit", "priority": 1,
          "applicable_product_tags": ["cloud"], "invoice_contract": "c1-2024", "applicable_contracts": ["c1-2024"],
          "access_schedule": {"schedule_items": [{"amount": 50000, "starting_at": START, "ending_before": YEAR_END}]},
          "invoice_schedule": {"schedule_items": [{"amount": 50000, "timestamp": START}]}}
GOODWILL = {"key": "goodwill", "product": "prepaid-commit", "priority": 2, "name": "Goodwill credit",
            "access_schedule": {"schedule_items": [{"amount": 2500, "starting_at": START, "ending_before": YEAR_END}]}}


def test_customer_commits_and_credits_are_created_after_the_contracts_they_name(sqlite_store, tmp_path):
    account = Account(tmp_path, small_account(1))
    account.spec("Customer/c1").update(commits=[SHARED], credits=[GOODWILL])
    plan = make_plan(sqlite_store, account)
    ops = [(o.op, o.address) for o in plan.operations]
    assert ops.index(("create_customer_commit", "Customer/c1")) > ops.index(("create_contract", "Contract/c1-2024"))
    assert "commits" not in only(plan, "create_customer").request.body
    commit = only(plan, "create_customer_commit")
    assert commit.request.path == "/v1/contracts/customerCommits/create"
    assert commit.request.body == {
        "customer_id": "${Customer/c1.id}", "type": "PREPAID", "product_id": "${Product/prepaid-commit.id}",
        "priority": 1, "applicable_product_tags": ["cloud"], "invoice_contract_id": "${Contract/c1-2024.id}",
        "applicable_contract_ids": ["${Contract/c1-2024.id}"],
        "access_schedule": SHARED["access_schedule"], "invoice_schedule": SHARED["invoice_schedule"]}
    credit = only(plan, "create_customer_credit")
    assert credit.request.path == "/v1/contracts/customerCredits/create"
    assert credit.request.body["name"] == "Goodwill credit" and "type" not in credit.request.body
    apply(sqlite_store, plan)
    again = make_plan(sqlite_store, account)
    assert not again.operations and not again.drift and not again.errors


def test_added_customer_credit_is_created_and_a_changed_one_is_refused(sqlite_store, tmp_path):
    account = Account(tmp_path, small_account(1))
    converge(sqlite_store, account)
    account.spec("Customer/c1")["credits"] = [GOODWILL]
    plan = make_plan(sqlite_store, account)
    credit = only(plan, "create_customer_credit")
    assert credit.request.body["customer_id"] == sqlite_store.snapshot().objects["Customer/c1"].remote_id
    apply(sqlite_store, plan)
    assert not make_plan(sqlite_store, account).operations
    account.spec("Customer/c1")["credits"] = [{**GOODWILL, "priority": 3}]
    plan = make_plan(sqlite_store, account)
    assert plan.errored and "credit 'goodwill' changed" in str(plan.errors[0])
    account.spec("Customer/c1")["credits"] = []
    plan = make_plan(sqlite_store, account)
    assert plan.errored and "credit 'goodwill' was removed" in str(plan.errors[0])
