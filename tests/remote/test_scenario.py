"""Issue 11's scenario: the CLI (subprocess) with `--backend metronome` against `emulator serve`
(subprocess) on a free local port, the account read back over plain HTTP.

Expected values are the example manifests' own (manifests/customers/*.yaml), read by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ..conftest import run_cli


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("postgres_url")


def _env(served, store_url: str, **extra: str) -> dict[str, str]:
    return {"BILLING_RECONCILER_BACKEND": "metronome", "METRONOME_BASE_URL": served.base_url,
            "METRONOME_BEARER_TOKEN": served.token, "BILLING_RECONCILER_STORE": store_url,
            # The SDK's and httpx's debug logs on: the token must not be in them either.
            "METRONOME_LOG": "debug", **extra}


def _account(served) -> dict[str, dict]:
    """Every customer (by name) with its contracts and billing provider configurations, over plain HTTP."""
    with served.client(timeout=30) as http:
        customers = http.get("/v1/customers").json()["data"]
        out = {}
        for customer in customers:
            contracts = http.post("/v2/contracts/list", json={"customer_id": customer["id"]}).json()["data"]
            configs = http.post("/v1/getCustomerBillingProviderConfigurations",
                                json={"customer_id": customer["id"]}).json()["data"]
            out[customer["name"]] = {"customer": customer, "contracts": contracts, "configs": configs}
    return out


def test_apply_read_back_drift_restore_and_a_wrong_token(example_tree: Path, emulator_server, store_url: str):
    served = emulator_server
    env = _env(served, store_url)
    outputs = []

    def cli(*args: str, expect: int = 0, environ: dict[str, str] = env):
        result = run_cli(*args, cwd=example_tree, env=environ)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == expect, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    cli("init")
    applied = cli("apply", "--auto-approve")
    assert f"Target: metronome API at {served.base_url}" in applied.stdout  # the plan names the API host

    account = _account(served)
    # Four customers in the manifests (widgetsexpress.yaml: 1, seat-plans.yaml: 3), each once.
    assert sorted(account) == ["Acme Corp", "Bright Labs", "Copperworks", "WidgetsExpress"]
    widgets = account["WidgetsExpress"]
    assert widgets["customer"]["ingest_aliases"][0] == "team@widgetsexpress.com"
    assert [c["billing_provider"] for c in widgets["configs"]] == ["aws_marketplace"]
    [contract] = widgets["contracts"]
    assert contract["name"] == "WidgetsExpress 2024" and contract["starting_at"] == "2024-11-01T00:00:00Z"
    [commit] = contract["commits"]
    assert commit["access_schedule"]["schedule_items"][0]["amount"] == 1000000  # prepaid-2024
    assert commit["invoice_schedule"]["schedule_items"][0]["unit_price"] == 1000000
    [charge] = contract["scheduled_charges"]
    assert charge["schedule"]["recurring_schedule"]["unit_price"] == 100000  # platform-fee
    assert contract["usage_filter"]["initial"]["group_values"] == ["US"]
    assert contract["billing_provider_configuration"]["billing_provider"] == "aws_marketplace"
    [acme_contract] = account["Acme Corp"]["contracts"]
    [override] = acme_contract["overrides"]  # enable-pro-annual
    assert override["entitled"] is True and override["starting_at"] == "2025-04-01T00:00:00Z"
    assert [c["billing_provider"] for c in account["Acme Corp"]["configs"]] == ["stripe"]

    quiet = cli("plan", "--detailed-exitcode", "--format", "markdown")  # 0: nothing to do right after the apply
    assert f"Target: metronome API at `{served.base_url}`" in quiet.stdout

    # Behind the tool's back: one more override on Acme's contract, through plain HTTP.
    acme = account["Acme Corp"]["customer"]["id"]
    with served.client(timeout=30) as http:
        product = http.post("/v1/contract-pricing/products/list", json={}).json()["data"][0]["id"]
        response = http.post("/v2/contracts/edit", json={
            "customer_id": acme, "contract_id": acme_contract["id"],
            "add_overrides": [{"starting_at": "2025-06-01T00:00:00Z", "product_id": product, "type": "MULTIPLIER",
                               "multiplier": 0.5}]})
        assert response.status_code == 200, response.text
    drift = cli("plan", "--detailed-exitcode", "--format", "json", expect=2)
    [op] = json.loads(drift.stdout)["operations"]
    assert op["op"] == "edit_contract" and op["drift"] is True
    assert len(op["request"]["body"]["remove_overrides"]) == 1
    assert "add_overrides" not in op["request"]["body"]  # the manifests' override is still there: kept

    cli("apply", "--auto-approve")
    cli("plan", "--detailed-exitcode")
    [restored] = _account(served)["Acme Corp"]["contracts"]
    assert len(restored["overrides"]) == 1

    wrong = cli("plan", expect=1, environ={**env, "METRONOME_BEARER_TOKEN": "not-the-token", "METRONOME_LOG": ""})
    assert wrong.stderr.strip().splitlines() == [
        f"Error: the Metronome API at {served.base_url} refused the token (401): check METRONOME_BEARER_TOKEN"]
    assert "Traceback" not in wrong.stdout + wrong.stderr

    # A saved plan names its API and is applied only there (mutation: --backend ignored for plan files).
    cli("plan", "--out", "saved.json")
    saved = json.loads((example_tree / "saved.json").read_text())
    assert saved["backend"] == {"name": "metronome", "api": served.base_url}
    elsewhere = cli("apply", "saved.json", expect=1, environ={**env, "BILLING_RECONCILER_BACKEND": "embedded"})
    assert f"the plan was made against the metronome API at {served.base_url}, not the embedded" in elsewhere.stderr
    assert served.token not in (example_tree / "saved.json").read_text()

    # The token is in no output (debug logs on) and nowhere in the store's files.
    assert not [o for o in outputs if served.token in o]
    if store_url.startswith("sqlite"):
        for path in Path(store_url[len("sqlite:///"):]).parent.glob("state.db*"):
            assert served.token.encode() not in path.read_bytes()


def test_money_arrives_exactly(tmp_path: Path, emulator_server):
    """Prices at the manifests' limits (9 decimal places; 15 significant digits) reach the server
    as written and read back equal (plan empty). Mutations caught: amounts quantised to cents or
    to 6 places, or summed/scaled through float on the way (123456.123456789 * 100 / 100 in float
    is 123456.12345678901)."""
    served = emulator_server
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "catalog.yaml").write_text("""\
apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: calls}
spec: {name: Calls, type: FIXED}
---
apiVersion: billing-reconciler/v1
kind: RateCard
metadata: {name: exact}
spec:
  name: Exact
  rates:
    - product: calls
      starting_at: 2024-01-01T00:00:00Z
      ending_before: 2025-01-01T00:00:00Z
      entitled: true
      rate_type: FLAT
      price: 0.000000001
    - product: calls
      starting_at: 2025-01-01T00:00:00Z
      entitled: true
      rate_type: FLAT
      price: 123456.123456789
""")
    env = _env(served, f"sqlite:///{tmp_path}/state.db")
    for args in (("init",), ("apply", "--auto-approve")):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    with served.client(timeout=30) as http:
        [card] = http.post("/v1/contract-pricing/rate-cards/list", json={}).json()["data"]
        raw = http.post("/v1/contract-pricing/rate-cards/getRateSchedule",
                        json={"rate_card_id": card["id"], "starting_at": "2020-01-01T00:00:00Z"}).text
    assert '"price":0.000000001' in raw.replace(" ", "")
    assert '"price":123456.123456789' in raw.replace(" ", "")
    again = run_cli("plan", "--detailed-exitcode", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
