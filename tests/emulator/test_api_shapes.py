"""Every object the embedded backend holds can be read back over HTTP and rebuilt exactly.

The example account is applied with the embedded backend into a store that `emulator serve` then
serves; every object is read through the API's list endpoints (all pages, archived ones too),
its rates and billing provider configurations through theirs, and rebuilt with
`api_shapes.stored_shape`: the result must equal the stored object, byte for byte in canonical
JSON. This is what the metronome-sdk backend relies on to refresh through HTTP.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

from sqlalchemy import create_engine, text

from billing_reconciler import canonical
from billing_reconciler.emulator.api_shapes import stored_shape

from ..conftest import EXAMPLE_MANIFESTS, run_cli
from ..http_emulator import start_emulator

KINDS = ("customer", "contract", "product", "rate_card", "billable_metric")


def _pages(client, method: str, path: str, *, params=None, body=None) -> list[dict]:
    out, cursor = [], None
    while True:
        query = {**(params or {}), "limit": 3, **({"next_page": cursor} if cursor else {})}
        response = client.request(method, path, params=query, json=body if method == "POST" else None)
        assert response.status_code == 200, response.text
        page = json.loads(response.text, parse_float=Decimal)
        out += page["data"]
        if not (cursor := page.get("next_page")):
            return out


def read_account(client) -> dict[str, dict]:
    """Every object, rebuilt in the emulator's shape from the read endpoints: {id: object}."""
    rebuilt: dict[str, dict] = {}
    customers = _pages(client, "GET", "/v1/customers") + _pages(client, "GET", "/v1/customers",
                                                                params={"only_archived": "true"})
    for customer in customers:
        configs = client.post("/v1/getCustomerBillingProviderConfigurations",
                              json={"customer_id": customer["id"], "include_archived": True})
        balances = {name: _pages(client, "POST", f"/v1/contracts/customer{name.title()}/list",
                                 body={"customer_id": customer["id"]}) for name in ("commits", "credits")}
        rebuilt[customer["id"]] = stored_shape("customer", customer,
                                               configurations=json.loads(configs.text, parse_float=Decimal)["data"],
                                               balances=balances)
        contracts = client.post("/v2/contracts/list", json={"customer_id": customer["id"], "include_archived": True})
        for contract in json.loads(contracts.text, parse_float=Decimal)["data"]:
            rebuilt[contract["id"]] = stored_shape("contract", contract)
    for metric in _pages(client, "GET", "/v1/billable-metrics", params={"include_archived": "true"}):
        rebuilt[metric["id"]] = stored_shape("billable_metric", metric)
    for product in _pages(client, "POST", "/v1/contract-pricing/products/list", body={"archive_filter": "ALL"}):
        rebuilt[product["id"]] = stored_shape("product", product)
    for card in _pages(client, "POST", "/v1/contract-pricing/rate-cards/list", body={}):
        rates = _pages(client, "POST", "/v1/contract-pricing/rate-cards/getRateSchedule",
                       body={"rate_card_id": card["id"], "starting_at": "1970-01-01T00:00:00Z"})
        rebuilt[card["id"]] = stored_shape("rate_card", card, rates=rates)
    return rebuilt


def test_every_kind_reads_back_exactly_over_http(tmp_path):
    # Catches: a kind or an archived object no list endpoint returns, a field to_api drops or
    # renames without stored_shape undoing it (rates, conversions, configurations, product
    # updates), pages that lose objects, and amounts that lose digits on the way.
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    data = tmp_path / "data"
    data.mkdir()
    store = f"sqlite:///{data / 'emulator.db'}"
    run_cli("--store", store, "init", cwd=tmp_path, check=True)
    run_cli("--store", store, "apply", "--auto-approve", cwd=tmp_path, check=True)
    engine = create_engine(store)
    with engine.connect() as conn:
        stored = {row[0]: (row[1], canonical.loads(row[2])) for row in
                  conn.execute(text("SELECT id, type, body FROM emulator_objects"))}
    engine.dispose()
    assert {type_ for type_, _ in stored.values()} >= set(KINDS)  # the example has every kind

    with start_emulator(data) as served, served.client(timeout=60) as client:
        # Out of band: a product update (the API's `updates`) and an archived customer.
        product = next(i for i, (t, _) in stored.items() if t == "product")
        response = client.post("/v1/contract-pricing/products/update",
                               json={"product_id": product, "starting_at": "2025-01-01T00:00:00Z", "name": "Renamed"})
        assert response.status_code == 200, response.text
        archived = client.post("/v1/customers", json={"name": "Gone", "ingest_aliases": ["gone"]}).json()["data"]["id"]
        assert client.post("/v1/customers/archive", json={"id": archived}).status_code == 200
        rebuilt = read_account(client)

    engine = create_engine(store)
    with engine.connect() as conn:
        now = {row[0]: canonical.loads(row[1]) for row in
               conn.execute(text("SELECT id, body FROM emulator_objects WHERE type != 'credit_type'"))}
    engine.dispose()
    assert set(rebuilt) == set(now)
    for object_id, obj in now.items():
        assert canonical.dumps(canonical.canonicalize(rebuilt[object_id])) == canonical.dumps(canonical.canonicalize(obj)), \
            object_id


def test_customer_level_commits_and_credits_are_listed_apart_and_rebuilt():
    # Catches: a customer's get answering its customer-level commits (the API lists them from
    # customerCommits/list), or stored_shape not putting them back where the readers look.
    from billing_reconciler.emulator import api_shapes

    stored = {"id": "c-1", "name": "Multi", "ingest_aliases": ["m"], "custom_fields": {},
              "commits": [{"id": "k-1", "type": "PREPAID", "product": {"id": "p-1"}, "priority": 1,
                           "invoice_contract": {"id": "ct-1"},
                           "access_schedule": {"schedule_items": [{"id": "s-1", "amount": 100}]}}],
              "credits": [{"id": "k-2", "product": {"id": "p-1"}, "priority": 2}]}
    served = api_shapes.customer(stored)
    assert "commits" not in served and "credits" not in served
    listed = {name: api_shapes.customer_balances(stored, name) for name in ("commits", "credits")}
    assert listed["commits"][0]["customer_id"] == "c-1"
    assert stored_shape("customer", served, balances=listed) == stored
