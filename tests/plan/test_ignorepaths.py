"""ignore_changes paths: parsed, masked (the planners see the backend's values under them) and
stripped (what is digested), item by key, all items, nested fields, whole items; and the
validation of paths against a kind's spec, located in the manifest."""

from __future__ import annotations

import pytest

from billing_reconciler.ignorepaths import mask, parse_path, strip
from billing_reconciler.manifests.lifecycle import ignore_path_problem

DESIRED = {"name": "Acme", "custom_fields": {"crm": "1", "team": "a"},
           "commits": [{"key": "c1", "name": "One", "access_schedule": {"schedule_items": [{"amount": 10}]}},
                       {"key": "c2", "name": "Two"}, {"key": "new", "name": "New"}],
           "overrides": [{"key": "o1", "priority": 1, "multiplier": 0.9}, {"key": "o2", "priority": 2}]}
ACTUAL = {"name": "Acme (CRM)", "custom_fields": {"crm": "9", "team": "a"},
          "commits": [{"key": "c1", "name": "Uno", "access_schedule": {"schedule_items": [{"amount": 99}]}},
                      {"key": "c2", "name": "Dos"}, {"key": "gone", "name": "Gone"}],
          "overrides": [{"key": "o1", "priority": 5, "multiplier": 0.9}, {"key": "o2"}]}


def test_parse_path_steps_and_refusals():
    assert parse_path("spec.commits[prepaid-2024].access_schedule") == (("commits", "prepaid-2024"),
                                                                         ("access_schedule", None))
    assert parse_path("spec.overrides[*].priority") == (("overrides", "*"), ("priority", None))
    for bad in ("commits.name", "spec", "spec.", "spec.commits[]", "spec.commits[A]", "spec.a..b"):
        with pytest.raises(ValueError, match="is not a spec path"):
            parse_path(bad)


def test_mask_takes_the_backends_values_under_the_paths_only():
    masked = mask(DESIRED, ACTUAL, ["spec.name", "spec.custom_fields.crm", "spec.commits[c1].access_schedule",
                                    "spec.overrides[*].priority"])
    assert masked["name"] == "Acme (CRM)" and masked["custom_fields"] == {"crm": "9", "team": "a"}
    c1 = masked["commits"][0]
    assert c1["access_schedule"] == {"schedule_items": [{"amount": 99}]} and c1["name"] == "One"  # name not ignored
    assert [c["key"] for c in masked["commits"]] == ["c1", "c2", "new"]  # added item still planned
    # o2 has no priority in the backend: ignored means "as the backend has it", i.e. absent.
    assert masked["overrides"] == [{"key": "o1", "priority": 5, "multiplier": 0.9}, {"key": "o2"}]
    assert DESIRED["name"] == "Acme"  # not mutated


def test_mask_of_a_whole_item_and_of_every_item():
    whole = mask(DESIRED, ACTUAL, ["spec.commits[c2]", "spec.commits[gone]"])
    # c2 as the backend holds it; `gone`, removed from the manifest, is kept (not archived).
    assert [(c["key"], c["name"]) for c in whole["commits"]] == [("c1", "One"), ("c2", "Dos"), ("new", "New"),
                                                                 ("gone", "Gone")]
    assert mask(DESIRED, ACTUAL, ["spec.commits[*]"])["commits"] == ACTUAL["commits"]
    names = mask(DESIRED, ACTUAL, ["spec.commits[*].name"])["commits"]
    assert [(c["key"], c["name"]) for c in names] == [("c1", "Uno"), ("c2", "Dos"), ("new", "New")]


def test_strip_removes_what_is_under_the_paths_on_either_side_alike():
    paths = ["spec.name", "spec.custom_fields.crm", "spec.commits[*].name", "spec.overrides[o2]"]
    assert strip(DESIRED, paths) == {
        "custom_fields": {"team": "a"},
        "commits": [{"key": "c1", "access_schedule": {"schedule_items": [{"amount": 10}]}}, {"key": "c2"},
                    {"key": "new"}],
        "overrides": [{"key": "o1", "priority": 1, "multiplier": 0.9}]}
    # A map left empty disappears, as the canonical form has no empties.
    assert strip({"custom_fields": {"crm": "1"}, "name": "x"}, ["spec.custom_fields.crm"]) == {"name": "x"}


@pytest.mark.parametrize("kind, path, expected", [
    ("Contract", "spec.commits[prepaid-2024].access_schedule", None),
    ("Contract", "spec.overrides[*].priority", None),
    ("Contract", "spec.commits[c1].access_schedule.schedule_items", None),
    ("Customer", "spec.custom_fields.sfdc_account_id", None),
    ("Customer", "spec.nmae", "spec has no field 'nmae' in a Customer; did you mean spec.name?"),
    ("Customer", "spec.ingest_aliases[x]", "spec.ingest_aliases is not a keyed list"),
    ("Customer", "spec.custom_fields.crm.x", "spec.custom_fields.crm holds a plain value"),
    ("Contract", "spec.commits.name", "spec.commits is a list: select its items by key or all of them, e.g. "
                                      "spec.commits[KEY].name or spec.commits[*].name"),
    ("Contract", "spec.overrides[*].prioriti", "spec.overrides[*] has no field 'prioriti'"),
    ("RateCard", "spec.rates[*].price", "spec.rates is not a keyed list"),
])
def test_ignore_paths_are_checked_against_the_kinds_spec(kind, path, expected):
    problem = ignore_path_problem(kind, path)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected), problem
