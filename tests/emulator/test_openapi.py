"""Request validation against Metronome's OpenAPI document, and our request bodies against it.

The first test plans every example account and its edits (tests/emulator/bodies.py) and checks
that 100% of the bodies validate strictly. The focused tests check that the validator refuses what
the API refuses, naming the field; each names the mutation of the code it catches.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import fastjsonschema
import pytest

from billing_reconciler.emulator import openapi
from billing_reconciler.emulator.openapi import RequestRefused, match, validate_request
from billing_reconciler.emulator.schema_convert import SchemaConverter
from billing_reconciler.money import USD_CREDIT_TYPE_ID
from billing_reconciler.plan.operations import CATALOG

from .bodies import Sent, every_body

ID = "0b9a6c1e-4a0e-4d84-8a6f-2f5a8d7c1e01"
ID2 = "5d3c0a8e-1f2b-4c3d-9e4f-5a6b7c8d9e0f"
START = "2024-11-01T00:00:00Z"
END = "2025-11-01T00:00:00Z"


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> list[Sent]:
    return every_body(tmp_path_factory.mktemp("accounts"))


# --- every body our plans emit -------------------------------------------------------------------

def test_every_request_body_our_plans_emit_validates_strictly(bodies):
    refused = []
    for sent in bodies:
        try:
            validate_request(sent.method, sent.path, sent.body)
        except RequestRefused as refusal:
            refused.append(f"{sent.where()}: {refusal}")
    assert not refused, f"{len(refused)} of {len(bodies)} request bodies refused:\n" + "\n".join(refused)


def test_the_bodies_cover_every_operation_and_edit_key(bodies):
    # Mutation caught: a scenario silently dropped, so "100% valid" covers less than it claims.
    assert {s.op for s in bodies} == set(CATALOG)
    edit_keys = {key for s in bodies if s.op == "edit_contract" for key in s.body}
    assert edit_keys >= {
        "add_commits", "add_credits", "add_overrides", "remove_overrides", "add_scheduled_charges",
        "add_subscriptions", "add_recurring_commits", "add_recurring_credits", "archive_commits",
        "archive_credits", "archive_scheduled_charges", "update_commits", "update_credits",
        "update_scheduled_charges", "update_subscriptions", "update_recurring_commits", "update_recurring_credits",
        "update_contract_name", "update_contract_end_date", "update_net_payment_terms_days",
        "add_billing_provider_configuration_update", "add_spend_threshold_configuration",
        "update_spend_threshold_configuration", "add_prepaid_balance_threshold_configuration",
        "update_prepaid_balance_threshold_configuration"}
    assert len(bodies) >= 100


def test_recurring_amounts_carry_the_usd_credit_type(bodies):
    # Mutation caught: the builders stop adding credit_type_id to recurring commits/credits.
    amounts = [item[amount] for s in bodies if s.op in ("create_contract", "edit_contract")
               for key in ("recurring_commits", "recurring_credits", "add_recurring_commits", "add_recurring_credits")
               for item in s.body.get(key, []) for amount in ("access_amount", "invoice_amount") if amount in item]
    assert len(amounts) >= 4
    assert all(a["credit_type_id"] == USD_CREDIT_TYPE_ID for a in amounts)


def test_added_subscription_schedules_follow_in_a_second_edit(bodies):
    # Mutation caught: quantity_updates of a subscription added by edit_contract dropped (NOT_SENT).
    edits = [s for s in bodies if s.op == "edit_contract" and "new subscription" in s.scenario]
    assert [sorted(k for k in s.body if k not in ("customer_id", "contract_id")) for s in edits] == [
        ["add_recurring_commits", "add_recurring_credits", "add_subscriptions"], ["update_subscriptions"]]
    added = edits[0].body["add_subscriptions"][0]
    assert "quantity_updates" not in added and "seat_updates" not in added
    assert edits[1].body["update_subscriptions"][0]["quantity_updates"] == [
        {"starting_at": "2025-08-01T00:00:00Z", "quantity": 3}]


# --- what the validator refuses ----------------------------------------------------------------

def contract(**extra) -> dict:
    body = {"customer_id": ID, "starting_at": START,
            "commits": [{"type": "PREPAID", "product_id": ID2,
                         "access_schedule": {"schedule_items": [{"amount": 100000, "starting_at": START,
                                                                 "ending_before": END}]}}]}
    body.update(extra)
    return body


def refusal(method: str, path: str, body) -> RequestRefused:
    with pytest.raises(RequestRefused) as caught:
        validate_request(method, path, body)
    return caught.value


def test_a_valid_contract_is_accepted():
    validate_request("POST", "/v1/contracts/create", contract())


def test_unknown_top_level_field_is_refused_and_named():
    # Mutation caught: strictness not added (additionalProperties left open).
    refused = refusal("POST", "/v1/customers", {"name": "Acme", "nmae": "Acme"})
    assert (refused.status, refused.field) == (400, "nmae")
    assert refused.message == "unknown field 'nmae'; did you mean 'name'?"
    assert str(refused) == "nmae: unknown field 'nmae'; did you mean 'name'? (HTTP 400)"


def test_unknown_nested_field_is_refused_with_its_json_path():
    # Mutation caught: strictness only on the top-level object, not inside $ref'd schemas.
    body = contract()
    body["commits"][0]["access_schedule"]["schedule_items"][0]["amout"] = 5
    refused = refusal("POST", "/v1/contracts/create", body)
    assert refused.field == "commits[0].access_schedule.schedule_items[0].amout"
    assert "unknown field 'amout'" in refused.message


def test_missing_required_field_is_named():
    # Mutation caught: required ignored, or the field reported as its parent object.
    body = contract()
    del body["starting_at"]
    refused = refusal("POST", "/v1/contracts/create", body)
    assert (refused.status, refused.field, refused.message) == (400, "starting_at", "required field is missing")


def test_missing_credit_type_on_a_recurring_amount_is_refused():
    # Mutation caught: a recurring commit sent without credit_type_id (what the builders did).
    recurring = {"product_id": ID2, "priority": 1, "starting_at": START, "commit_duration": {"value": 1},
                 "access_amount": {"unit_price": 1000, "quantity": 1},
                 "invoice_amount": {"unit_price": 1000, "quantity": 1, "credit_type_id": USD_CREDIT_TYPE_ID}}
    refused = refusal("POST", "/v1/contracts/create", contract(recurring_commits=[recurring]))
    assert refused.field == "recurring_commits[0].access_amount.credit_type_id"
    recurring["access_amount"]["credit_type_id"] = USD_CREDIT_TYPE_ID
    validate_request("POST", "/v1/contracts/create", contract(recurring_commits=[recurring]))


def test_all_of_members_are_merged_before_strictness():
    # Mutation caught: each allOf member made strict on its own (refuses every recurring commit:
    # invoice_amount is in one member, access_amount in the other), or the merged object left open.
    recurring = {"product_id": ID2, "priority": 1, "starting_at": START, "commit_duration": {"value": 1},
                 "access_amount": {"unit_price": 1000, "credit_type_id": USD_CREDIT_TYPE_ID},
                 "invoice_amount": {"unit_price": 1000, "quantity": 1, "credit_type_id": USD_CREDIT_TYPE_ID}}
    validate_request("POST", "/v2/contracts/edit", {"customer_id": ID, "contract_id": ID2,
                                                   "add_recurring_commits": [recurring]})
    recurring["invoice_amout"] = {}
    refused = refusal("POST", "/v2/contracts/edit", {"customer_id": ID, "contract_id": ID2,
                                                     "add_recurring_commits": [recurring]})
    assert refused.field == "add_recurring_commits[0].invoice_amout"


def test_wrong_enum_value_is_refused_with_the_allowed_values():
    # Mutation caught: enum not checked, or case-folded beyond what the document lists.
    body = contract()
    body["commits"][0]["type"] = "PREPAYED"
    refused = refusal("POST", "/v1/contracts/create", body)
    assert refused.field == "commits[0].type"
    assert refused.message.startswith('"PREPAYED" is not allowed; use one of "PREPAID", "prepaid"')


def test_enum_values_in_either_case_are_accepted_where_the_document_lists_both():
    # Mutation caught: enums upper-cased only (the document lists LOWEST_MULTIPLIER and lowest_multiplier).
    validate_request("POST", "/v1/contracts/create", contract(multiplier_override_prioritization="lowest_multiplier"))
    body = contract()
    body["commits"][0]["type"] = "prepaid"
    validate_request("POST", "/v1/contracts/create", body)


def test_wrong_type_is_refused_and_named():
    # Mutation caught: type not checked; a boolean taken for a number (Python's bool is an int).
    refused = refusal("POST", "/v1/contracts/create", contract(name=5))
    assert (refused.field, refused.message) == ("name", "must be a string, not a number")
    refused = refusal("POST", "/v1/contracts/create", contract(net_payment_terms_days=True))
    assert (refused.field, refused.message) == ("net_payment_terms_days", "must be a number, not a boolean")
    refused = refusal("POST", "/v1/contracts/create", contract(commits={}))
    assert (refused.field, refused.message) == ("commits", "must be a list, not an object")


def test_decimal_is_a_json_number():
    # Mutation caught: bodies with Decimal money refused (or validated through float).
    body = contract()
    body["commits"][0]["access_schedule"]["schedule_items"][0]["amount"] = Decimal("100000.5")
    validate_request("POST", "/v1/contracts/create", body)
    # `integer` takes an integral Decimal (JSON 5.0) and refuses a fraction.
    validate_request("POST", "/v1/contracts/customerCommits/list", {"customer_id": ID, "limit": Decimal("5")})
    refused = refusal("POST", "/v1/contracts/customerCommits/list", {"customer_id": ID, "limit": Decimal("2.5")})
    assert (refused.field, refused.message) == ("limit", "must be an integer, not a number")


def test_open_maps_stay_open_exactly_as_the_schema_has_them():
    # Mutation caught: strictness closing a map the document leaves open (custom_fields:
    # additionalProperties {type: string}; a billing provider's configuration: additionalProperties true).
    validate_request("POST", "/v1/customFields/setValues",
                     {"entity": "customer", "entity_id": ID, "custom_fields": {"any_key": "x", "other": "y"}})
    validate_request("POST", "/v1/customers", {
        "name": "Acme", "custom_fields": {"sfdc_account_id": "1"},
        "customer_billing_provider_configurations": [{
            "billing_provider": "stripe", "delivery_method": "direct_to_billing_provider",
            "configuration": {"stripe_customer_id": "cus_1", "anything": {"nested": [1, 2]}}}]})
    # ... and an open map's value schema still holds.
    refused = refusal("POST", "/v1/customFields/setValues",
                      {"entity": "customer", "entity_id": ID, "custom_fields": {"any_key": 5}})
    assert (refused.field, refused.message) == ("custom_fields.any_key", "must be a string, not a number")


def test_nullable_takes_null_and_only_there():
    # Mutation caught: nullable ignored (refuses a documented null) or null taken everywhere.
    validate_request("POST", "/v2/contracts/edit", {"customer_id": ID, "contract_id": ID2,
                                                   "update_contract_end_date": None})
    refused = refusal("POST", "/v1/contracts/create", contract(name=None))
    assert (refused.field, refused.message) == ("name", "must be a string, not null")


def test_formats_are_checked():
    # Mutation caught: uuid/date-time formats not checked (the API refuses a malformed id or time).
    refused = refusal("POST", "/v1/contracts/create", contract(customer_id="acme"))
    assert (refused.field, refused.message) == ("customer_id", '"acme" is not a valid uuid')
    refused = refusal("POST", "/v1/contracts/create", contract(starting_at="2024-11-01"))
    assert (refused.field, refused.message) == ("starting_at", '"2024-11-01" is not a valid date-time')


def test_one_of_refusal_names_the_field_and_each_shape():
    # Mutation caught: oneOf branches left open (CONTRACT_IDS without contract_ids would match
    # another branch), or the refusal not naming where the choice is.
    body = contract()
    body["commits"][0]["hierarchy_configuration"] = {"child_access": {"type": "ALL"}}
    validate_request("POST", "/v1/contracts/create", body)
    body["commits"][0]["hierarchy_configuration"] = {"child_access": {"type": "CONTRACT_IDS"}}
    refused = refusal("POST", "/v1/contracts/create", body)
    assert refused.field == "commits[0].hierarchy_configuration.child_access"
    assert refused.message.startswith("matches none of the 3 allowed shapes (shape 1: type: ")
    assert "shape 3: contract_ids: required field is missing" in refused.message


def test_path_ids_are_not_body_fields():
    # Mutation caught: make_request leaving the path's customer_id in the body.
    validate_request("POST", f"/v1/customers/{ID}/setName", {"name": "Acme"})
    refused = refusal("POST", f"/v1/customers/{ID}/setName", {"customer_id": ID, "name": "Acme"})
    assert refused.field == "customer_id"


def test_body_presence():
    # Mutation caught: a missing body accepted although its schema has required fields; a body
    # sent where the operation takes none.
    refused = refusal("POST", "/v1/contracts/create", None)
    assert (refused.status, refused.field, refused.message) == (400, "customer_id", "required field is missing")
    refused = refusal("GET", f"/v1/customers/{ID}", {"name": "x"})
    assert "takes no request body" in refused.message
    validate_request("GET", f"/v1/customers/{ID}", None)


# --- routing -------------------------------------------------------------------------------------

def test_match_gives_the_template_and_path_parameters():
    assert match("POST", f"/v1/customers/{ID}/setName") == ("/v1/customers/{customer_id}/setName", {"customer_id": ID})
    # A literal path wins over a template it also matches.
    assert match("POST", "/v1/customers/archive") == ("/v1/customers/archive", {})
    assert match("GET", f"/v1/customers/{ID}?x=1") == ("/v1/customers/{customer_id}", {"customer_id": ID})


@pytest.mark.parametrize("method, path", [("POST", "/v1/nothing/here"), ("DELETE", "/v1/customers"),
                                          ("POST", "/v1/customers/a/b/c/d")])
def test_unknown_path_or_method_is_404(method, path):
    with pytest.raises(RequestRefused) as caught:
        match(method, path)
    assert (caught.value.status, caught.value.field) == (404, None)
    assert "no such endpoint" in str(caught.value)


def test_validators_are_compiled_once_per_endpoint(monkeypatch):
    # Mutation caught: the schema compiled on every request (far too slow for an apply).
    validate_request("POST", "/v1/contracts/create", contract())
    calls = []
    monkeypatch.setattr(openapi, "_compile", lambda schema: calls.append(schema))
    for _ in range(3):
        validate_request("POST", "/v1/contracts/create", contract())
    assert calls == []


# --- the converter on its own --------------------------------------------------------------------

def test_recursive_references_stay_recursive_and_strict():
    # Mutation caught: $ref inlined without a guard (infinite recursion) or recursion left open.
    components = {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}
    schema = SchemaConverter(components).root({"$ref": "#/components/schemas/Node"})
    check = fastjsonschema.compile(schema, use_default=False)
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    check(copy.deepcopy(tree))
    tree["children"][0]["children"][0]["colour"] = "red"
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as caught:
        check(tree)
    assert caught.value.rule == "additionalProperties"
    assert caught.value.name == "data.children[0].children[0]"


def test_the_document_is_bundled_with_the_package():
    # Mutation caught: the JSON left out of the package data (the emulator would not start installed).
    import importlib.resources

    bundled = importlib.resources.files("billing_reconciler.emulator").joinpath("metronome-openapi.json")
    assert bundled.is_file()
    assert len(openapi.document()["paths"]) == 128
    shared = Path(__file__).resolve().parents[3] / "shared" / "reference" / "metronome-openapi.json"
    if shared.exists():
        assert bundled.read_bytes() == shared.read_bytes()


def test_every_operation_of_the_document_compiles():
    # Mutation caught: a schema construct the converter mishandles (a JsonSchemaDefinitionException
    # at the first request to that endpoint, in the middle of an apply).
    compiled = 0
    for template, item in openapi.document()["paths"].items():
        for method in item:
            if method in openapi.METHODS:
                assert openapi._endpoint(method, template) is openapi._endpoint(method, template)
                compiled += 1
    assert compiled == 133
