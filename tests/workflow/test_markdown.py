"""The pull-request comment: snapshots pin the markdown; properties hold for any plan and any value.

Update the snapshots after an intended change with `pytest tests/workflow --snapshot-update` and
review the .md files under __snapshots__/ like any other diff.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from billing_reconciler.plan.operations import Change
from billing_reconciler.plan.plan import Plan
from billing_reconciler.plan.render import render
from billing_reconciler.plan.render.markdown import COMMENT_LIMIT, MARKER

from .plans import big_plan, check_markdown, full_plan, impact_plan, op, refused_plan


class MarkdownSnapshot(SingleFileSnapshotExtension):
    file_extension = "md"  # syrupy 5+
    _file_extension = "md"  # syrupy 4
    _write_mode = WriteMode.TEXT


@pytest.fixture
def md_snapshot(snapshot):
    return snapshot.use_extension(MarkdownSnapshot)


def markdown(plan: Plan, **kwargs) -> str:
    from billing_reconciler.plan.render.markdown import render as render_markdown

    out = render_markdown(plan, **kwargs)
    check_markdown(out, kwargs.get("limit", COMMENT_LIMIT))
    return out


def test_full_plan(md_snapshot):
    out = markdown(full_plan())
    assert out == md_snapshot
    assert out.startswith(MARKER + "\n")
    assert "**Plan: 2 to create, 3 to update, 1 to replace, 1 to archive.** (1 drifted, 1 unmanaged)" in out


def test_refused_plan(md_snapshot):
    out = markdown(refused_plan())
    assert out == md_snapshot
    assert "**Plan failed: 1 error(s); nothing can be applied.**" in out


def test_no_changes(md_snapshot):
    assert markdown(Plan(lineage="l", serial=1, manifests_digest="", operations=())) == md_snapshot


def test_invoice_impact(md_snapshot):
    out = markdown(impact_plan())
    assert out == md_snapshot
    # Dollars with two places; the absorbed change (bolt) is listed with its drawdown and balance.
    assert "| `acme` | total | $11,000.90 | $11,000.45 | -$0.45 |" in out
    assert "|  | commit/credit drawdown | -$611.60 | -$500.00 |  |" in out
    assert "|  | balance bolt-2025/prepaid | $388.40 | $500.00 |  |" in out


def test_from_ref(md_snapshot):
    plan = Plan(lineage=None, serial=0, manifests_digest="", operations=(
        op("set_customer_name", "Customer/acme", "update",
           {"customer_id": "${Customer/acme.id}", "name": "Acme Inc."}, changes=[Change("name", "Acme", "Acme Inc.")]),))
    plan.extras["from_ref"] = {"ref": "origin/main", "commit": "0123456789abcdef0123456789abcdef01234567",
                               "directory": "manifests", "exists": True, "objects": 22}
    out = markdown(plan)
    assert out == md_snapshot
    assert "`POST /v1/customers/(known after apply)/setName`" in out


def test_secrets_are_redacted_in_every_view_but_not_in_the_plan_file():
    from billing_reconciler import canonical
    from billing_reconciler.plan.planfile import plan_to_json

    plan = full_plan()
    for fmt in ("text", "markdown", "json"):
        out = render(plan, fmt)
        assert "SECRET" not in out, fmt
        assert "(sensitive)" in out
        assert "cus_123" in out  # not a secret: shown
        assert '"group_keys"' in out or fmt == "text"
    plan_file = canonical.dumps(plan_to_json(plan))  # what `plan --out` writes
    assert "sk_live_SECRET" in plan_file and "tok_SECRET" in plan_file  # apply needs the real values


def test_over_the_limit_whole_objects_are_left_out_with_a_count():
    plan = big_plan(400, body_size=2_000)
    out = markdown(plan)
    shown = out.count("<details>")
    assert 0 < shown < 400
    assert f"_{400 - shown} more object diff(s) not shown: the comment would exceed GitHub's size limit." in out
    assert out.count("| `~` | `Customer/c") == 400  # the table still lists every object


def test_one_huge_object_is_cut_by_operation_with_a_count():
    plan = big_plan(2, body_size=3_000, ops_per_object=40)
    out = markdown(plan)
    assert out.count("<details>") == 2
    assert "more operation(s) of this object not shown" in out


def test_a_table_too_long_for_the_comment_is_cut_with_a_count():
    plan = big_plan(5_000, body_size=10)
    out = markdown(plan)
    assert "_… and " in out and "more object(s) (the comment would exceed GitHub's size limit)_" in out
    shown = out.count("<details>")
    assert f"{5000 - shown} more object diff(s) not shown" in out


@pytest.mark.parametrize("limit", [1_000, 3_000, 10_000])
def test_any_limit_is_respected(limit):
    for plan in (full_plan(), big_plan(50), refused_plan(), impact_plan()):
        markdown(plan, limit=limit)


_nasty = st.lists(st.sampled_from(list("ab|`*_<>&#\\\n-[] ") + ["</details>", "```", "<details>", "\n```\n"]),
                  max_size=12).map("".join)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=_nasty, before=_nasty, after=_nasty, message=_nasty, key=_nasty)
def test_no_value_breaks_the_layout(name, before, after, message, key):
    from billing_reconciler.manifests.errors import Problem

    plan = Plan(lineage="l", serial=1, manifests_digest="", operations=(
        op("set_customer_name", "Customer/acme", "update", {"customer_id": "c", "name": name, key or "k": after},
           changes=[Change(f"custom_fields.{key}", before, after), Change("name", before, name)], reason=message),
        op("archive_customer", "Customer/old", "archive", {"id": name}, reason=message),
    ), errors=(Problem("m.yaml", 1, 1, "Customer/acme", f"spec.{key}", message),))
    plan.extras["invoice_impact"] = {"usage": name, "events": 1, "until": before,
                                     "customers": [{"customer": key, "before": 1, "after": 2, "delta": 1}]}
    check_markdown(render(plan, "markdown"))
    check_markdown(render(plan, "markdown"), COMMENT_LIMIT)


def test_plan_file_extras_round_trip_through_json():
    plan = impact_plan()
    data = json.loads(render(plan, "json"))
    assert data["invoice_impact"]["customers"][0]["delta"] == -45
