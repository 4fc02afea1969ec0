"""Customer: create, rename, ingest aliases, custom fields, billing provider configurations."""

from __future__ import annotations

from typing import Any

from ..context import PlanContext
from ..diff import field_changes, keyed
from ..operations import Action, Change, ItemEffect
from .base import changed, immutable, operation, register

CONFIGS = "customer_billing_provider_configurations"


def create(ctx: PlanContext, m) -> list:
    items = [ItemEffect(CONFIGS, c["key"], "add", c) for c in m.spec.get(CONFIGS, [])]
    return [operation("create_customer", m.address, Action.CREATE, ctx.api(m.spec), manifest=m,
                      reason="new in manifests", changes=field_changes(None, m.spec), items=items)]


def custom_field_ops(ctx: PlanContext, m, entity: str, entity_id: str, before: dict[str, str],
                     after: dict[str, str], reason: str) -> list:
    ops = []
    upserts = {k: v for k, v in after.items() if before.get(k) != v}
    removed = sorted(k for k in before if k not in after)
    if upserts:
        ops.append(operation(
            "set_custom_field_values", m.address, Action.UPDATE,
            {"entity": entity, "entity_id": entity_id, "custom_fields": upserts}, manifest=m, reason=reason,
            changes=[Change(f"custom_fields.{k}", before.get(k), v) for k, v in sorted(upserts.items())]))
    if removed:
        ops.append(operation(
            "delete_custom_field_values", m.address, Action.UPDATE,
            {"entity": entity, "entity_id": entity_id, "keys": removed}, manifest=m, reason=reason,
            changes=[Change(f"custom_fields.{k}", before[k], None) for k in removed]))
    return ops


def update(ctx: PlanContext, m, actual, reason: str) -> list:
    before, after = actual.spec, m.spec
    customer_id = actual.remote_id
    if immutable(ctx, m, before, ["customer_revenue_system_configurations"],
                 "revenue system configurations cannot be edited through the API; set them in the billing app"):
        return []
    ops = []
    if changed(before, after, "name"):
        ops.append(operation("set_customer_name", m.address, Action.UPDATE,
                             {"customer_id": customer_id, "name": after["name"]}, manifest=m, reason=reason,
                             changes=[Change("name", before.get("name"), after.get("name"))]))
    if changed(before, after, "ingest_aliases"):
        ops.append(operation("set_ingest_aliases", m.address, Action.UPDATE,
                             {"customer_id": customer_id, "ingest_aliases": after.get("ingest_aliases", [])},
                             manifest=m, reason=reason,
                             changes=[Change("ingest_aliases", before.get("ingest_aliases"), after.get("ingest_aliases"))]))
    ops += custom_field_ops(ctx, m, "customer", customer_id, before.get("custom_fields", {}),
                            after.get("custom_fields", {}), reason)
    ops += _billing_provider_ops(ctx, m, actual, reason)
    return ops


def _billing_provider_ops(ctx: PlanContext, m, actual, reason: str) -> list:
    old, new = keyed(actual.spec.get(CONFIGS)), keyed(m.spec.get(CONFIGS))
    ops = []
    for key in sorted(set(old) & set(new)):
        if old[key] != new[key]:
            index = [c["key"] for c in m.spec[CONFIGS]].index(key)
            ctx.refuse(m, ("spec", CONFIGS, index),
                       f"billing provider configuration '{key}' cannot be edited; remove it (it is archived) "
                       "and add the new configuration under a new key")
    added = [new[k] for k in sorted(set(new) - set(old))]
    removed = sorted(set(old) - set(new))
    if added:
        data = [{"customer_id": actual.remote_id, **_strip_key(ctx.api(c))} for c in added]
        ops.append(operation(
            "set_customer_billing_provider_configurations", m.address, Action.UPDATE, {"data": data},
            manifest=m, reason=reason,
            changes=[Change(f"{CONFIGS}[{c['key']}]", None, c) for c in added],
            items=[ItemEffect(CONFIGS, c["key"], "add", c) for c in added]))
    if removed:
        ids = [ctx.item_id(actual.address, CONFIGS, k) for k in removed]
        ops.append(operation(
            "archive_customer_billing_provider_configurations", m.address, Action.UPDATE,
            {"customer_id": actual.remote_id, "customer_billing_provider_configuration_ids": ids},
            manifest=m, reason=reason,
            changes=[Change(f"{CONFIGS}[{k}]", old[k], None, note="archive") for k in removed],
            items=[ItemEffect(CONFIGS, k, "archive") for k in removed]))
    return ops


def _strip_key(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "key"}


def archive(ctx: PlanContext, actual) -> list:
    return [operation("archive_customer", actual.address, Action.ARCHIVE, {"id": actual.remote_id},
                      manifest=None, reason="pruned: not in manifests")]


register("Customer", create=create, update=update, archive=archive)
