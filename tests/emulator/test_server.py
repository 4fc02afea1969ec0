"""`billing-reconciler emulator serve` over real HTTP: the CLI as a subprocess, httpx as client.

Each test names, in a comment, the mistake in the server it catches.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ..conftest import run_cli
from ..http_emulator import new_token, start_emulator

USD = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _json(response: httpx.Response):
    """The body with numbers as Decimals, as a careful client parses it."""
    return json.loads(response.text, parse_float=Decimal)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the tests that only add objects of their own."""
    with start_emulator(tmp_path_factory.mktemp("serve") / "data", args=("--access-log",)) as emulator:
        yield emulator


@pytest.fixture
def client(served):
    with served.client(timeout=30) as c:
        yield c


def _post(client: httpx.Client, path: str, body) -> dict:
    response = client.post(path, content=body if isinstance(body, str) else json.dumps(body))
    assert response.status_code == 200, response.text
    return _json(response)


def test_customer_and_contract_read_back_with_exact_amounts(client):
    # Catches: amounts parsed or written through float (0.1 + 0.2 != 0.3; 17 significant digits
    # and 18 decimal places do not survive a double), and list endpoints that miss new objects.
    customer = _post(client, "/v1/customers", {"name": "Exact Co", "ingest_aliases": ["exact-co"]})["data"]["id"]
    product = _post(client, "/v1/contract-pricing/products/create", {"name": "Platform fee", "type": "FIXED"})["data"]["id"]
    # The body is written by hand: a JSON encoder would go through float for these numbers.
    body = ('{"customer_id": "%s", "starting_at": "2025-01-01T00:00:00Z", "name": "Exact", "commits": ['
            '{"type": "PREPAID", "product_id": "%s", "priority": 1,'
            ' "access_schedule": {"credit_type_id": "%s", "schedule_items": ['
            '  {"amount": 0.1, "starting_at": "2025-01-01T00:00:00Z", "ending_before": "2025-02-01T00:00:00Z"},'
            '  {"amount": 0.2, "starting_at": "2025-02-01T00:00:00Z", "ending_before": "2025-03-01T00:00:00Z"},'
            '  {"amount": 12345678901234567.89, "starting_at": "2025-03-01T00:00:00Z", "ending_before": "2025-04-01T00:00:00Z"},'
            '  {"amount": 0.000000123456789012, "starting_at": "2025-04-01T00:00:00Z", "ending_before": "2025-05-01T00:00:00Z"}'
            ']}}]}') % (customer, product, USD)
    contract = _post(client, "/v1/contracts/create", body)["data"]["id"]

    customers = client.get("/v1/customers", params={"ingest_alias": "exact-co"})
    assert [c["id"] for c in _json(customers)["data"]] == [customer]
    listed = client.post("/v2/contracts/list", json={"customer_id": customer})
    (read,) = _json(listed)["data"]
    assert read["id"] == contract and read["name"] == "Exact"
    amounts = [item["amount"] for item in read["commits"][0]["access_schedule"]["schedule_items"]]
    assert amounts[0] + amounts[1] == Decimal("0.3")  # 0.1 + 0.2, exactly
    assert amounts[2:] == [Decimal("12345678901234567.89"), Decimal("0.000000123456789012")]
    # On the wire: bare JSON numbers with every digit (not strings, not exponents).
    assert "12345678901234567.89" in listed.text and "0.000000123456789012" in listed.text
    got = _json(client.post("/v2/contracts/get", json={"customer_id": customer, "contract_id": contract}))["data"]
    assert got == read


def test_pages_cover_every_customer_once(client):
    # Catches: a cursor that repeats or skips the object at a page boundary, a last page that
    # still has a next_page, a limit that is not honoured.
    created = {_post(client, "/v1/customers", {"name": f"Paged {i}"})["data"]["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"next_page": cursor} if cursor else {})}
        page = _json(client.get("/v1/customers", params=params))
        pages += 1
        assert len(page["data"]) <= 2
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_page"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # no customer twice
    assert created <= set(seen)
    everything = _json(client.get("/v1/customers", params={"limit": 100}))
    assert seen == [c["id"] for c in everything["data"]]  # same objects, same (id) order
    assert pages == -(-len(seen) // 2)  # ceil(n / 2) pages of 2
    bad = client.get("/v1/customers", params={"next_page": "not-a-cursor"})
    assert bad.status_code == 400 and "next_page" in bad.json()["message"]


def test_unknown_field_is_refused_naming_it(client):
    # Catches: a server that skips the OpenAPI validation, or answers it without the field.
    response = client.post("/v1/customers", json={"name": "Typo", "ingest_alises": ["x"]})
    assert response.status_code == 400
    assert "ingest_alises" in response.json()["message"]
    assert "ingest_aliases" in response.json()["message"]  # the hint: did you mean
    nested = client.post("/v1/contract-pricing/products/create", json={"name": "P", "type": "FIXED", "tags": [1]})
    assert nested.status_code == 400 and "tags[0]" in nested.json()["message"]


def test_unparseable_body_is_400_not_500(client):
    # Catches: a JSON error escaping as a 500 (or a traceback), NaN accepted as a number, and an
    # exponent expanded into a billion-digit integer (the server stalls).
    for raw in ('{"name": ', "\xff\xfe", '{"name": "N", "custom_fields": {}, "x": NaN}',
                '{"name": "N", "x": 1e999999999}'):
        response = client.post("/v1/customers", content=raw.encode("latin-1"))
        assert response.status_code == 400, response.text
        assert "Traceback" not in response.text


def test_wrong_or_missing_token_is_401_and_the_token_is_never_shown(served, client):
    # Catches: an auth check that accepts a prefix, a missing header or another scheme, and a
    # token echoed into responses or the server's log.
    for headers in ({"Authorization": f"Bearer {served.token}x"}, {"Authorization": f"Bearer {served.token[:-1]}"},
                    {"Authorization": f"Basic {served.token}"}, {"Authorization": served.token}, {}):
        response = httpx.get(f"{served.base_url}/v1/customers", headers=headers, timeout=30)
        assert response.status_code == 401, headers
        assert served.token not in response.text and served.token not in str(response.headers)
    ok = client.get("/v1/customers")
    bad = client.post("/v1/customers", json={"name": "Leak?", "nope": 1})
    missing = client.get(f"/v1/customers/{UNKNOWN_ID}")
    for response in (ok, bad, missing):
        assert served.token not in response.text and served.token not in str(response.headers)
    log = served.output()
    assert "GET /v1/customers" in log  # the access log is on: requests are logged ...
    assert served.token not in log  # ... without their token


def test_unknown_ids_paths_and_methods(client):
    # Catches: unknown ids answered 200 with null, unknown paths 405 or 500, wrong methods 404,
    # and a contract read through the wrong customer.
    assert client.get(f"/v1/customers/{UNKNOWN_ID}").status_code == 404
    assert client.get(f"/v1/billable-metrics/{UNKNOWN_ID}").status_code == 404
    assert client.post("/v1/contract-pricing/products/get", json={"id": UNKNOWN_ID}).status_code == 404
    assert client.post("/v1/contract-pricing/rate-cards/get", json={"id": UNKNOWN_ID}).status_code == 404
    assert client.post("/v2/contracts/list", json={"customer_id": UNKNOWN_ID}).status_code == 404
    edit = client.post("/v2/contracts/edit", json={"customer_id": UNKNOWN_ID, "contract_id": UNKNOWN_ID})
    assert edit.status_code == 404 and "customer_id" in edit.json()["message"]
    assert client.get("/v1/no-such-thing").status_code == 404
    wrong_method = client.delete("/v1/customers")
    assert wrong_method.status_code == 405 and set(wrong_method.headers["allow"].split(", ")) == {"GET", "POST"}
    assert client.post("/v1/contracts/amend", json={}).status_code == 501  # in the API, not emulated
    a = _post(client, "/v1/customers", {"name": "Owner A"})["data"]["id"]
    b = _post(client, "/v1/customers", {"name": "Owner B"})["data"]["id"]
    contract = _post(client, "/v1/contracts/create", {"customer_id": a, "starting_at": "2025-01-01T00:00:00Z"})["data"]["id"]
    assert client.post("/v2/contracts/get", json={"customer_id": b, "contract_id": contract}).status_code == 404


def test_concurrent_writes_all_land_once(served, client):
    # Catches: writes not serialised by the server's own lock (a request taking the in-memory
    # state before it holds the write lock, then publishing over another request's commit: an
    # object committed but missing from reads), and SQLite's "database is locked" as a 500.
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> str:
        with served.client(timeout=60) as c:
            return _post(c, "/v1/customers", {"name": f"Concurrent {i}", "ingest_aliases": [f"concurrent-{i}"]})["data"]["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(create, range(48)))
    assert len(set(ids)) == 48
    listed = []
    cursor = None
    while True:
        page = _json(client.get("/v1/customers", params={"limit": 100, **({"next_page": cursor} if cursor else {})}))
        listed += [c["id"] for c in page["data"]]
        if not (cursor := page["next_page"]):
            break
    assert set(ids) <= set(listed)
    for i in (0, 47):
        found = _json(client.get("/v1/customers", params={"ingest_alias": f"concurrent-{i}"}))["data"]
        assert [c["id"] for c in found] == [ids[i]]


def test_restart_on_the_same_data_keeps_objects_and_exits_0(tmp_path):
    # Catches: writes not committed (kept only in memory), a data directory re-created on start,
    # and a SIGTERM that kills the server instead of stopping it (exit -15).
    data = tmp_path / "data"
    with start_emulator(data) as first:
        with first.client(timeout=30) as c:
            customer = _post(c, "/v1/customers", {"name": "Durable", "ingest_aliases": ["durable"]})["data"]["id"]
            metric = _post(c, "/v1/billable-metrics/create",
                           {"name": "Calls", "aggregation_type": "COUNT", "event_type_filter": {"in_values": ["call"]}})
    assert first.returncode == 0, first.output()
    with start_emulator(data) as second:
        with second.client(timeout=30) as c:
            got = _json(c.get(f"/v1/customers/{customer}"))["data"]
            assert (got["name"], got["ingest_aliases"]) == ("Durable", ["durable"])
            assert _json(c.get(f"/v1/billable-metrics/{metric['data']['id']}"))["data"]["name"] == "Calls"
            assert first.token != second.token  # each start has its own token ...
            assert httpx.get(f"{second.base_url}/v1/customers", headers=first.headers).status_code == 401  # ... and only it


def test_token_file(tmp_path):
    # Catches: --token-file ignored (the server would refuse every request: no token in the env)
    # or read with its trailing newline.
    with start_emulator(tmp_path / "data", token_file=tmp_path / "token") as served:
        assert "METRONOME_BEARER_TOKEN" not in os.environ
        assert httpx.get(f"{served.base_url}/v1/customers", headers=served.headers, timeout=30).status_code == 200


def test_no_token_is_one_clear_line_and_exit_1(tmp_path: Path):
    # Catches: a server that starts unprotected, or a traceback instead of a message.
    result = run_cli("emulator", "serve", "--port", "0", "--data", str(tmp_path / "d"), cwd=tmp_path,
                     env={"METRONOME_BEARER_TOKEN": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "METRONOME_BEARER_TOKEN" in lines[0] and "--token-file" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    result = run_cli("emulator", "serve", "--port", "0", "--token-file", str(empty), cwd=tmp_path)
    assert result.returncode == 1 and "empty" in result.stderr and "Traceback" not in result.stderr
    # A token on the command line is not an option at all.
    result = run_cli("emulator", "serve", "--token", new_token(), cwd=tmp_path)
    assert result.returncode == 1 and "No such option" in result.stderr


def test_serve_in_thread_runs_a_wrapped_app(tmp_path):
    # Catches: serve_in_thread serving something else than the app it is given (fault-injecting
    # middleware would be bypassed), or not stopping (the test would hang at exit).
    from ..http_emulator import serve_in_thread, served_app

    token = new_token()
    app = served_app(tmp_path / "data", token)
    calls = {"n": 0}

    async def first_call_fails(scope, receive, send):
        if scope["type"] == "http":
            calls["n"] += 1
            if calls["n"] == 1:
                await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"0")]})
                await send({"type": "http.response.body", "body": b'{"message": "injected"}'})
                return
        await app(scope, receive, send)

    with serve_in_thread(first_call_fails) as base_url:
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{base_url}/v1/customers", json={"name": "T"}, headers=headers, timeout=30).status_code == 503
        created = httpx.post(f"{base_url}/v1/customers", json={"name": "T"}, headers=headers, timeout=30)
        assert created.status_code == 200
        listed = httpx.get(f"{base_url}/v1/customers", headers=headers, timeout=30).json()["data"]
        assert [c["id"] for c in listed] == [created.json()["data"]["id"]]  # one: the 503 reached nothing
    app.state.emulator.close()


def test_ingest_alias_conflicts_follow_renames_and_archives(client):
    # Catches: the served emulator's alias index not updated when a customer's aliases change
    # or it is archived (a taken alias accepted twice, or a freed one still refused).
    first = _post(client, "/v1/customers", {"name": "First", "ingest_aliases": ["alias-a"]})["data"]["id"]
    taken = client.post("/v1/customers", json={"name": "Second", "ingest_aliases": ["alias-a"]})
    assert taken.status_code == 409 and "ingest_aliases" in taken.json()["message"]
    _post(client, f"/v1/customers/{first}/setIngestAliases", {"ingest_aliases": ["alias-b"]})
    _post(client, "/v1/customers", {"name": "Takes a", "ingest_aliases": ["alias-a"]})  # freed by the rename
    assert client.post("/v1/customers", json={"name": "Wants b", "ingest_aliases": ["alias-b"]}).status_code == 409
    _post(client, "/v1/customers/archive", {"id": first})
    _post(client, "/v1/customers", {"name": "Takes b", "ingest_aliases": ["alias-b"]})  # freed by the archive


def test_a_failure_inside_is_a_short_500_without_traceback(tmp_path, caplog):
    # Catches: Starlette's default error page or a traceback (with the exception's text, which
    # may hold request data) sent to the client.
    from ..http_emulator import serve_in_thread, served_app

    token = new_token()
    app = served_app(tmp_path / "data", token)
    state = app.state.emulator

    def broken(*_args):
        raise RuntimeError("internal detail: do not show")

    state.write = broken
    with serve_in_thread(app) as base_url:
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.post(f"{base_url}/v1/customers/", json={"name": "X"}, headers=headers, timeout=30)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/json"
        assert "internal detail" not in response.text and "Traceback" not in response.text
        assert set(response.json()) == {"message"}
        still = httpx.get(f"{base_url}/v1/customers", headers=headers, timeout=30)
        assert still.status_code == 200  # the server keeps serving
    assert "internal detail: do not show" in caplog.text  # the log has it
    state.close()


def test_a_uniqueness_key_is_accepted_once(client):
    # Catches: a contract create or edit repeated with the same uniqueness_key done twice (the
    # metronome backend's "never a duplicate" rests on this 409), a refused request that still
    # uses up its key, and a key shared across customers.
    a = _post(client, "/v1/customers", {"name": "Keyed A"})["data"]["id"]
    b = _post(client, "/v1/customers", {"name": "Keyed B"})["data"]["id"]
    product = _post(client, "/v1/contract-pricing/products/create", {"name": "Keyed fee", "type": "FIXED"})["data"]["id"]
    create = {"customer_id": a, "starting_at": "2025-01-01T00:00:00Z", "uniqueness_key": "lineage-1-0"}
    refused = client.post("/v1/contracts/create", json={
        **create, "billing_provider_configuration": {"billing_provider_configuration_id": UNKNOWN_ID}})
    assert refused.status_code == 404, refused.text  # refused after the key was claimed: not used up
    contract = _post(client, "/v1/contracts/create", create)["data"]["id"]
    again = client.post("/v1/contracts/create", json=create)
    assert again.status_code == 409 and "uniqueness_key" in again.json()["message"]
    assert [c["id"] for c in _json(client.post("/v2/contracts/list", json={"customer_id": a}))["data"]] == [contract]
    _post(client, "/v1/contracts/create", {**create, "customer_id": b})  # another customer's key space

    override = {"starting_at": "2025-01-01T00:00:00Z", "type": "MULTIPLIER", "multiplier": 0.5, "product_id": product}
    edit = {"customer_id": a, "contract_id": contract, "uniqueness_key": "lineage-1-1", "add_overrides": [override]}
    _post(client, "/v2/contracts/edit", edit)
    assert client.post("/v2/contracts/edit", json=edit).status_code == 409
    got = _json(client.post("/v2/contracts/get", json={"customer_id": a, "contract_id": contract}))["data"]
    assert len(got["overrides"]) == 1  # the repeated edit added nothing


def test_the_official_sdk_client_reads_and_writes(served):
    # Catches: shapes or pagination the official client cannot follow (its auto-pager stops or
    # loops on next_page, its models miss fields), and statuses it maps to the wrong errors.
    metronome = pytest.importorskip("metronome")  # the metronome backend's dependency
    client = metronome.Metronome(bearer_token=served.token, base_url=served.base_url, max_retries=0, timeout=60)
    ids = [client.v1.customers.create(name=f"SDK {i}", ingest_aliases=[f"sdk-{i}"]).data.id for i in range(3)]
    paged = [c.id for c in client.v1.customers.list(limit=1)]  # the SDK follows next_page itself
    assert len(paged) == len(set(paged)) and set(ids) <= set(paged)
    assert client.v1.customers.retrieve(customer_id=ids[0]).data.external_id == "sdk-0"
    product = client.v1.contracts.products.create(name="SDK fee", type="FIXED").data.id
    assert any(p.id == product and p.current.name == "SDK fee"
               for p in client.v1.contracts.products.list(archive_filter="ALL"))
    card = client.v1.contracts.rate_cards.create(name="SDK card").data.id
    client.v1.contracts.rate_cards.rates.add_many(rate_card_id=card, rates=[
        {"product_id": product, "starting_at": "2025-01-01T00:00:00Z", "entitled": True, "rate_type": "FLAT", "price": 2}])
    rates = list(client.v1.contracts.rate_cards.rates.list(rate_card_id=card, at="2025-06-01T00:00:00Z"))
    assert [(r.product_id, r.rate.price) for r in rates] == [(product, 2)]
    contract = client.v1.contracts.create(customer_id=ids[0], starting_at="2025-01-01T00:00:00Z", rate_card_id=card,
                                          uniqueness_key="sdk-key").data.id
    assert [c.id for c in client.v2.contracts.list(customer_id=ids[0]).data] == [contract]
    with pytest.raises(metronome.ConflictError):
        client.v1.contracts.create(customer_id=ids[0], starting_at="2025-01-01T00:00:00Z", uniqueness_key="sdk-key")
    with pytest.raises(metronome.BadRequestError):
        client.v1.customers.create(name="x", extra_body={"bogus": 1})
    with pytest.raises(metronome.NotFoundError):
        client.v1.customers.retrieve(customer_id=UNKNOWN_ID)
    wrong = metronome.Metronome(bearer_token=served.token + "x", base_url=served.base_url, max_retries=0)
    with pytest.raises(metronome.AuthenticationError):
        wrong.v1.customers.list().data


def test_a_transition_ends_the_old_contract_at_the_new_start_unless_it_ends_earlier(client):
    # Catches: the old contract's later end left in place (the comparison flipped), or an earlier
    # end moved out to the successor's start (the condition dropped). Sent directly, without the
    # planner's own end-date edit, so only the emulator's rule is measured.
    customer = _post(client, "/v1/customers", {"name": "Renewing"})["data"]["id"]

    def contract(start: str, end: str | None = None, **extra) -> str:
        body = {"customer_id": customer, "starting_at": start, **extra}
        if end:
            body["ending_before"] = end
        return _post(client, "/v1/contracts/create", body)["data"]["id"]

    def ends(contract_id: str):
        got = _json(client.post("/v2/contracts/get", json={"customer_id": customer, "contract_id": contract_id}))
        return got["data"].get("ending_before")

    late = contract("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    contract("2025-07-01T00:00:00Z", transition={"from_contract_id": late, "type": "RENEWAL"})
    assert ends(late) == "2025-07-01T00:00:00Z"  # 2026-01-01 is later than the successor's start
    early = contract("2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z")
    contract("2025-07-01T00:00:00Z", transition={"from_contract_id": early, "type": "SUPERSEDE"})
    assert ends(early) == "2025-03-01T00:00:00Z"  # it ended before the successor started: kept
