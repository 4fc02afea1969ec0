"""Secrets never printed: every command, every format, stdout and stderr, on an account whose
customer holds credentials in custom fields and in a billing provider configuration, plus a
field marked by `metadata.sensitive`.

Mutations caught:
- json_view.render printing plan_to_json unredacted (plan --format json, apply --format json);
- show/history printing o.spec / the history rows without AccountSecrets (show text+JSON, history);
- redaction.is_secret_name matching substrings (`task` as `sk`) or the bare `key` field, or
  missing a listed credential word (test_credential_names_...);
- AccountSecrets.from_manifests / Manifest.sensitive dropped (crm_account leaks);
- validate quoting an unquoted numeric secret (test_validate_never_quotes_a_numeric_secret);
- Redactor.change losing the change (a changed secret must still be shown as changed);
- planfile.write_plan writing plan_to_json unredacted, or StoreWriter.record the body as sent
  (a secret in plan.json / change.json / the edits rows), or writing "(sensitive)" without the keyed
  digest (then a rotated secret could not be told from the old one: the "hmac-sha256" asserts);
- from_env paths not added to Manifest.sensitive (crm_backup and account_ref are not named like
  credentials: they leak), or from_env.resolve not run by plan/apply (the backend would hold
  {"from_env": ...}, not ROTATED_ENV).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from billing_reconciler.redaction import AccountSecrets, Redactor, is_secret_name
from billing_reconciler.store import Store
from tests.conftest import run_cli

TOKEN, WEBHOOK, CRM, NEW_TOKEN = "tok-9f8e7d6c5b4a", "whsec-1a2b3c4d5e6f", "crm-5551212-acme", "tok-rotated-0000"
# Kept out of git: `{from_env: ...}` under fields not named like credentials (sensitive all the same).
FROM_ENV, ROTATED_ENV = "envsecret-77aa88bb", "envsecret-rotated-99cc"
ENV = {"CRM_BACKUP": FROM_ENV, "STRIPE_ACCOUNT_REF": "acctref-31337-env"}
SECRETS = (TOKEN, WEBHOOK, CRM, FROM_ENV, "acctref-31337-env")

CUSTOMER = f"""apiVersion: billing-reconciler/v1
kind: Customer
metadata:
  name: secretive
  sensitive: [spec.custom_fields.crm_account]
spec:
  name: Secretive Inc
  custom_fields:
    billing_api_token: {TOKEN}
    crm_account: {CRM}
    crm_backup: {{from_env: CRM_BACKUP}}
    region_task: plain-visible-value
  customer_billing_provider_configurations:
    - key: stripe
      billing_provider: stripe
      configuration:
        stripe_customer_id: cus_visible123
        stripe_collection_method: charge_automatically
        webhook_secret: {WEBHOOK}
        account_ref: {{from_env: STRIPE_ACCOUNT_REF}}
      delivery_method: direct_to_billing_provider
"""


@pytest.fixture
def secret_tree(example_tree: Path) -> Path:
    (example_tree / "manifests" / "customers" / "secretive.yaml").write_text(CUSTOMER)
    return example_tree


def _leaks(result, secrets=SECRETS) -> list[str]:
    return [s for s in secrets if s in result.stdout or s in result.stderr]


def _edits_rows(tree: Path) -> str:
    with sqlite3.connect(tree / ".billing-reconciler" / "state.db") as db:
        return "\n".join(f"{r[0]}\n{r[1]}" for r in db.execute("SELECT request, response FROM edits"))


def test_every_command_on_an_account_with_secrets_prints_none_of_them(secret_tree: Path):
    env = dict(ENV)
    run = lambda *args: run_cli(*args, cwd=secret_tree, env=env)  # noqa: E731
    outputs = {}
    outputs["validate"] = run("validate")
    outputs["validate json"] = run("validate", "--format", "json")
    outputs["fmt check"] = run("fmt", "--check")
    outputs["init"] = run("init")
    for fmt in ("text", "markdown", "json"):
        outputs[f"plan {fmt}"] = run("plan", "--format", fmt)
    outputs["plan out"] = run("plan", "--out", "plan.json", "--format", "json")
    outputs["apply planfile json"] = run("apply", "plan.json", "--format", "json")
    outputs["plan after"] = run("plan", "--detailed-exitcode", "--format", "json")
    for args in (["show"], ["show", "--format", "json"], ["show", "Customer/secretive"],
                 ["show", "Customer/secretive", "--format", "json"], ["history"], ["history", "--format", "json"],
                 ["history", "Customer/secretive", "--format", "json"], ["import", "--format", "json"],
                 ["invoices"], ["invoices", "--format", "json"]):
        outputs[" ".join(args)] = run(*args)
    # A rotated token (and environment value): a change of a secret, shown as a change without either value.
    path = secret_tree / "manifests" / "customers" / "secretive.yaml"
    path.write_text(path.read_text().replace(TOKEN, NEW_TOKEN).replace(CRM, CRM + "-2"))
    env["CRM_BACKUP"] = ROTATED_ENV
    for fmt in ("text", "markdown", "json"):
        outputs[f"plan change {fmt}"] = run("plan", "--format", fmt)
    outputs["plan change out"] = run("plan", "--out", "change.json")
    outputs["apply change file"] = run("apply", "change.json", "--format", "json")
    # A changed webhook secret: an edit the API refuses (the plan errors), its message shows neither value.
    path.write_text(path.read_text().replace(WEBHOOK, WEBHOOK + "x"))
    outputs["plan webhook"] = run("plan")
    outputs["apply change"] = run("apply", "--auto-approve")
    outputs["apply change json"] = run("apply", "--auto-approve", "--format", "json")
    outputs["history after change"] = run("history", "--format", "json")
    outputs["show after change"] = run("show", "Customer/secretive", "--format", "json")

    assert outputs["plan out"].returncode == 0 and outputs["apply planfile json"].returncode == 0
    assert outputs["apply change file"].returncode == 0, outputs["apply change file"].stderr
    assert outputs["plan webhook"].returncode == 1 and "'stripe' cannot be edited" in outputs["plan webhook"].stdout
    assert outputs["plan after"].returncode == 2 - 2  # applied: nothing left to do
    every_secret = SECRETS + (NEW_TOKEN, CRM + "-2", WEBHOOK + "x", ROTATED_ENV)
    leaks = {name: _leaks(r, every_secret) for name, r in outputs.items()}
    assert {name: found for name, found in leaks.items() if found} == {}
    # Nor do the files the tool writes: plan files and the store's history rows.
    files = {"plan.json": (secret_tree / "plan.json").read_text(), "change.json": (secret_tree / "change.json").read_text(),
             "edits rows": _edits_rows(secret_tree)}
    assert {name: [s for s in every_secret if s in text] for name, text in files.items()} == \
        {name: [] for name in files}
    for name, text in files.items():
        assert "(sensitive) hmac-sha256:" in text, name
    for name, result in outputs.items():
        assert "Traceback" not in result.stderr, name
    # Not over-redacted: ordinary values are still shown.
    assert "plain-visible-value" in outputs["plan text"].stdout and "cus_visible123" in outputs["plan text"].stdout
    assert "cus_visible123" in outputs["show Customer/secretive --format json"].stdout
    assert "cus_visible123" in files["plan.json"] and "plain-visible-value" in files["edits rows"]
    # ...while apply sent the real values, the environment's included (the backend holds them).
    api = json.loads(outputs["show after change"].stdout)["objects"][0]["api"]
    backend = Store(f"sqlite:///{secret_tree}/.billing-reconciler/state.db").backend_body(api["id"])
    assert backend["custom_fields"]["crm_backup"] == ROTATED_ENV and backend["custom_fields"]["billing_api_token"] == NEW_TOKEN
    assert FROM_ENV not in outputs["plan change text"].stdout
    assert '~ custom_fields.crm_backup: "(sensitive)" -> "(sensitive)"' in outputs["plan change text"].stdout

    text = outputs["plan change text"].stdout
    assert '~ custom_fields.billing_api_token: "(sensitive)" -> "(sensitive)"' in text
    assert '~ custom_fields.crm_account: "(sensitive)" -> "(sensitive)"' in text
    doc = json.loads(outputs["plan change json"].stdout)
    changes = [c for op in doc["operations"] for c in op["changes"]]
    token = next(c for c in changes if c["path"] == "custom_fields.billing_api_token")
    assert token == {"path": "custom_fields.billing_api_token", "before": "(sensitive)", "after": "(sensitive)",
                     "sensitive": True}
    assert "| `~` | `custom_fields.billing_api_token` | `\"(sensitive)\"` | `\"(sensitive)\"` |" in \
        outputs["plan change markdown"].stdout


def test_show_text_and_json_hide_the_secrets_but_not_the_keys(secret_tree: Path):
    run_cli("init", cwd=secret_tree, check=True)
    run_cli("apply", "--auto-approve", cwd=secret_tree, env=ENV, check=True)
    shown = json.loads(run_cli("show", "Customer/secretive", "--format", "json", cwd=secret_tree, check=True).stdout)
    spec = shown["objects"][0]["spec"]
    assert spec["custom_fields"] == {"billing_api_token": "(sensitive)", "crm_account": "(sensitive)",
                                     "crm_backup": "(sensitive)", "region_task": "plain-visible-value"}
    config = spec["customer_billing_provider_configurations"][0]
    assert config["key"] == "stripe" and config["configuration"]["webhook_secret"] == "(sensitive)"
    api = shown["objects"][0]["api"]  # the object as the backend holds it: hidden the same way
    assert api["custom_fields"] == spec["custom_fields"] and api["id"] == shown["objects"][0]["id"]
    assert api["customer_billing_provider_configurations"][0]["configuration"]["webhook_secret"] == "(sensitive)"


def test_validate_never_quotes_a_numeric_secret(secret_tree: Path):
    path = secret_tree / "manifests" / "customers" / "secretive.yaml"
    path.write_text(path.read_text().replace(TOKEN, "8675309123").replace(CRM, "4242424242"))
    for args in (["validate"], ["validate", "--format", "json"], ["plan"], ["fmt", "--check"]):
        result = run_cli(*args, cwd=secret_tree)
        assert "8675309123" not in result.stdout + result.stderr
        assert "4242424242" not in result.stdout + result.stderr
    result = run_cli("validate", cwd=secret_tree)
    assert result.returncode == 1
    assert ("spec.custom_fields.billing_api_token: expected text, got a number (not shown: the field is sensitive); "
            "put the value in quotes") in result.stderr


@pytest.mark.parametrize("name", [
    "pwd", "pass", "password", "db_password", "passwd", "auth", "authorization", "bearer", "dsn", "database_dsn",
    "connection_string", "connectionString", "webhook_url", "webhook-url", "webhookUrl", "jwt", "session",
    "session_id", "sk", "stripe_sk", "pin", "otp_seed", "secret", "client_secret", "clientSecret", "token",
    "billing_api_token", "api_key", "apiKey", "API_KEY", "private_key", "access_key", "stripe_api_key",
    "anrok_api_key", "avalara_password", "webhook_secret", "refresh_token", "credentials", "apitoken",
])
def test_credential_names_are_secret(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "key", "keys", "task", "author", "pinned", "passenger", "desk", "group_key", "group_keys", "aggregation_key",
    "pricing_group_key", "presentation_group_key", "seat_group_key", "uniqueness_key", "release_uniqueness_key",
    "bm_group_key_overrides", "name", "stripe_customer_id", "aws_region", "url", "webhook", "session_less"[:0] or "mission",
    "delivery_method", "billing_provider", "spin", "skip", "dusk",
])
def test_ordinary_names_are_not_secret(name):
    assert not is_secret_name(name)


def test_marked_fields_are_hidden_for_their_object_only():
    secrets = AccountSecrets({"Customer/a": frozenset({"crm_account"})})
    assert secrets("Customer/a").value({"custom_fields": {"crm_account": "x"}}) == \
        {"custom_fields": {"crm_account": "(sensitive)"}}
    assert secrets("Customer/a.commits[c]").path_is_secret("custom_fields.crm_account")
    assert secrets("Customer/b").value({"custom_fields": {"crm_account": "x"}}) == {"custom_fields": {"crm_account": "x"}}
    assert Redactor().at(True, "on_session_payment") is True  # a flag hides nothing


def test_an_error_quoting_a_request_never_shows_its_secrets():
    """Mutation caught: apply printing ApplyError's text as is (a backend refusal quoting the body)."""
    body = {"custom_fields": {"billing_api_token": TOKEN, "region": "us"}, "configuration": {"webhook_secret": 123456}}
    message = f"refused: custom_fields {{'billing_api_token': '{TOKEN}'}} and webhook_secret=123456 in us"
    scrubbed = Redactor().scrub(message, body)
    assert TOKEN not in scrubbed and "123456" not in scrubbed and "in us" in scrubbed


def test_looking_up_an_objects_redactor_is_not_quadratic():
    """Mutation caught: AccountSecrets scanning every marked address for each object shown (a
    10,000-object plan with 5,000 marked objects took 10 s to render instead of 0.2 s)."""
    import time

    secrets = AccountSecrets({f"Customer/c{i}": ["crm_account"] for i in range(0, 20_000, 2)})
    started = time.perf_counter()
    found = [secrets(f"Customer/c{i}.items[k]") for i in range(20_000)]
    assert time.perf_counter() - started < 1.0
    assert found[2].marked == {"crm_account"} and found[3].marked == frozenset()


def test_history_text_hides_secrets_found_by_their_keys():
    """Mutations caught: redaction._JSON_KEY missing keys (a body recorded with its secret), the
    escaped-text fallback dropped, keyed_digest not keyed (the same digest under another store's key)."""
    from billing_reconciler import canonical
    from billing_reconciler.redaction import keyed_digest

    one, other = Redactor(digest_key=b"1" * 32), Redactor(digest_key=b"2" * 32)
    body = {"customer_id": "c1", "configurations": [{"configuration": {"webhook_secret": TOKEN, "region": "us"}}],
            "note": 'a "quoted" \\ text', "custom_fields": {"crm": "x"}}
    text = canonical.dumps(body)
    hidden = canonical.loads(one.json_text(text))
    assert TOKEN not in one.json_text(text)
    assert hidden["configurations"][0]["configuration"] == {"webhook_secret": keyed_digest(TOKEN, b"1" * 32),
                                                            "region": "us"}
    assert hidden["note"] == body["note"] and hidden["custom_fields"] == {"crm": "x"}
    assert keyed_digest(TOKEN, b"1" * 32) != keyed_digest(TOKEN, b"2" * 32) != keyed_digest(NEW_TOKEN, b"2" * 32)
    assert one.json_text(text) != other.json_text(text)
    plain = canonical.dumps({"customer_id": "c1", "name": "Acme"})
    assert one.json_text(plain) is plain  # nothing to hide: not even parsed
    marked = Redactor(frozenset({"crm"}), b"1" * 32)
    assert canonical.loads(marked.json_text(text))["custom_fields"]["crm"].startswith("(sensitive) hmac-sha256:")
