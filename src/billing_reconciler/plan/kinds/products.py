"""Product: create, time-versioned update (takes starting_at), archive. `type` is fixed."""

from __future__ import annotations

from ..context import PlanContext
from ..diff import field_changes
from ..operations import APPLY_TIME_HOUR, Action
from .base import immutable, operation, register


def create(ctx: PlanContext, m) -> list:
    return [operation("create_product", m.address, Action.CREATE, ctx.api(m.spec), manifest=m,
                      reason="new in manifests", changes=field_changes(None, m.spec))]


def update(ctx: PlanContext, m, actual, reason: str) -> list:
    before = actual.spec
    if immutable(ctx, m, before, ["type"], "add a new Product with a new key instead"):
        return []
    after_api = ctx.api(m.spec)
    before_api = ctx.api(before)
    # products.update is versioned: it needs starting_at on an hour boundary. The planner does
    # not read the clock (plans are deterministic); the applier fills in the next full hour.
    body = {"product_id": actual.remote_id, "starting_at": APPLY_TIME_HOUR}
    for name in sorted(set(after_api) | set(before_api)):
        if name != "type" and after_api.get(name) != before_api.get(name):
            body[name] = after_api.get(name)
    return [operation("update_product", m.address, Action.UPDATE, body, manifest=m, reason=reason,
                      changes=field_changes(before, m.spec))]


def archive(ctx: PlanContext, actual) -> list:
    return [operation("archive_product", actual.address, Action.ARCHIVE, {"product_id": actual.remote_id},
                      manifest=None, reason="pruned: not in manifests")]


register("Product", create=create, update=update, archive=archive)
