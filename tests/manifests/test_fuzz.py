"""Whatever the input, the loader reports problems; it never raises (no traceback for bad input)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_reconciler.manifests import load_manifests

from ..conftest import ROOT

BASE = ROOT / "tests" / "bad_manifests" / "_base"
CUSTOMER = (BASE / "customer.yaml").read_text()

# Any JSON value; JSON is YAML, so it can stand in any position of a manifest.
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Field names that exist somewhere in a contract, so that replacements land on real fields.
FIELDS = ["apiVersion", "kind", "metadata", "name", "spec", "customer", "rate_card", "starting_at",
          "ending_before", "commits", "overrides", "key", "type", "product", "access_schedule",
          "schedule_items", "amount", "multiplier", "subscriptions", "subscription_rate",
          "recurring_credits", "subscription_config", "billing_provider_configuration", "quantity"]

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _replace(doc: object, field: str, value: object, nth: int) -> object:
    """Replace the nth occurrence (depth-first) of `field` anywhere in doc with value."""
    count = -1

    def walk(node: object) -> object:
        nonlocal count
        if isinstance(node, dict):
            out = {}
            for key, item in node.items():
                if key == field:
                    count += 1
                    if count == nth:
                        out[key] = value
                        continue
                out[key] = walk(item)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(doc)


def _base_docs() -> list[dict]:
    from ruamel.yaml import YAML

    # Timestamps as text, as the loader reads them.
    return [json.loads(json.dumps(d, default=str)) for d in YAML(typ="safe").load_all(CUSTOMER)]


@SETTINGS
@given(field=st.sampled_from(FIELDS), nth=st.integers(0, 3), value=values)
def test_any_value_in_any_field_is_reported_not_raised(tmp_path_factory, field: str, nth: int, value: object):
    tree = tmp_path_factory.mktemp("fuzz")
    (tree / "catalog.yaml").write_text((BASE / "catalog.yaml").read_text())
    docs = [_replace(doc, field, value, nth) for doc in _base_docs()]
    (tree / "customer.yaml").write_text("\n---\n".join(json.dumps(doc) for doc in docs))
    result = load_manifests(tree)
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1 and problem.message


@SETTINGS
@given(cut=st.integers(0, len(CUSTOMER) - 1), length=st.integers(1, 8), insert=st.text(max_size=3))
def test_any_text_edit_is_reported_not_raised(tmp_path_factory, cut: int, length: int, insert: str):
    tree = tmp_path_factory.mktemp("fuzz")
    (tree / "catalog.yaml").write_text((BASE / "catalog.yaml").read_text())
    (tree / "customer.yaml").write_text(CUSTOMER[:cut] + insert + CUSTOMER[cut + length:])
    result = load_manifests(tree)
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1 and problem.message
