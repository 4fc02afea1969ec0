"""BillableMetric: create, rename, archive. Filters and group keys are fixed at create."""

from __future__ import annotations

from ..context import PlanContext
from ..diff import field_changes
from ..operations import Action
from .base import immutable, operation, register

WAY_OUT = ("create a new BillableMetric with a new key and point the products at it "
           "(group keys cannot be edited after a streaming metric is created)")


def create(ctx: PlanContext, m) -> list:
    return [operation("create_billable_metric", m.address, Action.CREATE, ctx.api(m.spec),
                      manifest=m, reason="new in manifests", changes=field_changes(None, m.spec))]


def update(ctx: PlanContext, m, actual, reason: str) -> list:
    before = actual.spec
    fields = sorted((set(before) | set(m.spec)) - {"name"})
    if immutable(ctx, m, before, fields, WAY_OUT):
        return []
    body = {"billable_metric_id": actual.remote_id, "name": m.spec["name"]}
    return [operation("update_billable_metric", m.address, Action.UPDATE, body, manifest=m, reason=reason,
                      changes=field_changes(before, m.spec))]


def archive(ctx: PlanContext, actual) -> list:
    return [operation("archive_billable_metric", actual.address, Action.ARCHIVE, {"id": actual.remote_id},
                      manifest=None, reason="pruned: not in manifests")]


register("BillableMetric", create=create, update=update, archive=archive)
