"""RateCard: create + add_rates, metadata update, append-only rates, archive."""

from __future__ import annotations

from typing import Any

from ...specform import rate_identity, without_default_credit_type
from ..context import PlanContext
from ..diff import field_changes
from ..operations import Action, ref
from .base import immutable, operation, register

UPDATABLE = ("name", "description", "aliases")


def create(ctx: PlanContext, m) -> list:
    card = {k: v for k, v in m.spec.items() if k != "rates"}
    ops = [operation("create_rate_card", m.address, Action.CREATE, ctx.api(card), manifest=m,
                     reason="new in manifests", changes=field_changes(None, m.spec))]
    if m.spec.get("rates"):
        body = {"rate_card_id": ref(m.address), "rates": ctx.api(m.spec["rates"])}
        ops.append(operation("add_rates", m.address, Action.CREATE, body, manifest=m, reason="new in manifests"))
    return ops


def update(ctx: PlanContext, m, actual, reason: str) -> list:
    before, after = actual.spec, m.spec
    way_out = "create a new RateCard with a new key and move contracts to it"
    # rate-cards/update takes name, description and aliases only: credit type conversions are fixed at create.
    # The fiat credit type: none stated means USD (compared in specform's comparable form).
    if immutable(ctx, m, before, ["fiat_credit_type", "custom_fields", "credit_type_conversions"], way_out):
        return []
    changes = field_changes(before, after)
    ops = []
    meta = {name: after.get(name) for name in UPDATABLE if before.get(name) != after.get(name)}
    if meta:
        body = {"rate_card_id": actual.remote_id, **meta}
        ops.append(operation("update_rate_card", m.address, Action.UPDATE, body, manifest=m, reason=reason,
                             changes=[c for c in changes if not c.path.startswith("rates")]))
    new_rates = _new_rates(ctx, m, before.get("rates", []), after.get("rates", []))
    if new_rates is None:
        return []
    if new_rates:
        body = {"rate_card_id": actual.remote_id, "rates": ctx.api(new_rates)}
        ops.append(operation("add_rates", m.address, Action.UPDATE, body, manifest=m, reason=reason,
                             changes=[c for c in changes if c.path.startswith("rates")]))
    return ops


def _new_rates(ctx: PlanContext, m, before: list[dict], after: list[dict]) -> list[dict] | None:
    """Rates to add; None when a change cannot be made (rates are append-only)."""
    # Compared as the backend reads them back: the default (USD) credit type means the same as none.
    after = [without_default_credit_type(r) for r in after]
    old = {rate_identity(r): r for r in before}
    new = {rate_identity(r): r for r in after}
    added = [r for ident, r in new.items() if ident not in old]
    # Adding a rate that starts later ends the earlier one: that ending_before is implied.
    implied_ends = {(ident[:3], r["starting_at"]) for ident, r in new.items() if ident not in old}
    ok = True
    for index, rate in enumerate(after):
        ident = rate_identity(rate)
        if ident in old and old[ident] != rate:
            prior = {k: v for k, v in old[ident].items() if k != "ending_before"}
            current = {k: v for k, v in rate.items() if k != "ending_before"}
            if prior == current and (ident[:3], rate.get("ending_before")) in implied_ends:
                continue
            ctx.refuse(m, ("spec", "rates", index),
                       "rates are append-only (the billing API cannot edit or delete a rate); leave this "
                       "rate as it is, set its ending_before to when a new rate starts, and add the new "
                       "rate with a later starting_at")
            ok = False
    for ident, rate in old.items():
        if ident not in new:
            ctx.refuse(m, ("spec", "rates"),
                       f"the rate for {rate['product']} starting {rate['starting_at']} was removed, but rates "
                       "cannot be deleted; keep it and add a later rate (its ending_before ends it)")
            ok = False
    return added if ok else None


def archive(ctx: PlanContext, actual) -> list:
    return [operation("archive_rate_card", actual.address, Action.ARCHIVE, {"id": actual.remote_id},
                      manifest=None, reason="pruned: not in manifests")]


register("RateCard", create=create, update=update, archive=archive)
