"""Renames and lifecycle records through `--backend metronome` (the journaled apply): store-only,
no API call, the object keeps its id, and protection is recorded (CLI and `emulator serve` as
subprocesses). Mutation caught: the remote journal skipping the plan's moves and records (the
renamed card would be created again, and its protection never stored)."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import run_cli

CATALOG = """\
apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: calls}
spec: {name: Calls, type: FIXED}
---
apiVersion: billing-reconciler/v1
kind: RateCard
metadata: %s
spec:
  name: Standard
  rates:
    - product: calls
      starting_at: 2024-01-01T00:00:00Z
      entitled: true
      rate_type: FLAT
      price: 5
"""


def test_a_rename_with_protect_is_store_only_and_protection_holds(tmp_path: Path, emulator_server):
    served = emulator_server
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    catalog = manifests / "catalog.yaml"
    catalog.write_text(CATALOG % "{name: standard}")
    env = {"BILLING_RECONCILER_BACKEND": "metronome", "METRONOME_BASE_URL": served.base_url,
           "METRONOME_BEARER_TOKEN": served.token, "BILLING_RECONCILER_STORE": f"sqlite:///{tmp_path}/state.db"}

    def cli(*args: str, expect: int = 0):
        result = run_cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == expect, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def cards() -> list[dict]:
        with served.client(timeout=30) as http:
            return http.post("/v1/contract-pricing/rate-cards/list", json={}).json()["data"]

    cli("init")
    cli("apply", "--auto-approve")
    [card] = cards()

    catalog.write_text(CATALOG % "{name: standard-2025, moved_from: [standard], protect: true}")
    plan = json.loads(cli("plan", "--format", "json", "--detailed-exitcode", expect=2).stdout)
    assert plan["moved"] == [{"from": "RateCard/standard", "to": "RateCard/standard-2025"}]
    assert plan["operations"] == []
    cli("apply", "--auto-approve")
    assert [c["id"] for c in cards()] == [card["id"]]  # no second card: the rename made no API call
    cli("plan", "--detailed-exitcode")
    shown = json.loads(cli("show", "RateCard/standard-2025", "--format", "json").stdout)
    [obj] = shown["objects"]
    assert obj["id"] == card["id"] and obj["protected"] is True and obj["moved_from"] == ["standard"]

    catalog.write_text(CATALOG.split("---")[0])  # the card's manifest deleted: protection outlives it
    refused = cli("plan", "--prune", expect=1)
    assert "RateCard/standard-2025" in refused.stdout + refused.stderr
    assert "protect: false" in refused.stdout + refused.stderr
