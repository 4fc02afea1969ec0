"""Customer: create, rename, ingest aliases, custom fields, billing provider configurations."""

from __future__ import annotations

from typing import Any

from ..context import PlanContext
from ..diff import field_changes, keyed
from ..operations import Action, Change, ItemEffect
from .base import changed, immutable, operation, register

CONFIGS = "customer_billing_provider_configurations"


# Customer-level commits and credits: their own create endpoints, sent after the customer's
# contracts (they may name them: invoice_contract, applicable_contracts).
BALANCES = {"commits": "create_customer_commit", "credits": "create_customer_credit"}
LATE_OPS = frozenset(BALANCES.values())
BALANCE_WAY_OUT = ("the billing API cannot change or archive a customer-level {what} (only its end date); "
                   "keep it as it is, and add a new {what} under a new key for new terms")


def create(ctx: PlanContext, m) -> list:
    items = [ItemEffect(CONFIGS, c["key"], "add", c) for c in m.spec.get(CONFIGS, [])]
    body = ctx.api({k: v for k, v in m.spec.items() if k not in BALANCES})
    return [operation("create_customer", m.address, Action.CREATE, body, manifest=m,
                      reason="new in manifests", changes=field_changes(None, m.spec), items=items),
            *_balance_ops(ctx, m, ctx.id_of("Customer", m.name), {}, "new in manifests", Action.CREATE)]


def _balance_ops(ctx: PlanContext, m, customer_id: str, before: dict, reason: str, action: Action) -> list:
    """create_customer_commit / create_customer_credit for each added one; a changed or removed
    one is refused (the API has no update or archive for them)."""
    ops = []
    for name, op in BALANCES.items():
        old, new = keyed(before.get(name)), keyed(m.spec.get(name))
        for i, item in enumerate(m.spec.get(name, [])):
            key = item["key"]
            if key in old and old[key] != item:
                ctx.refuse(m, ("spec", name, i), f"{name[:-1]} '{key}' changed, but "
                                                 + BALANCE_WAY_OUT.format(what=name[:-1]))
            elif key not in old:
                body = {"customer_id": customer_id, **_strip_key(ctx.api(item))}
                ops.append(operation(op, m.address, action, body,
                                     manifest=m, reason=reason, changes=[Change(f"{name}[{key}]", None, item)],
                                     items=[ItemEffect(name, key, "add", item)]))
        for key in sorted(set(old) - set(new)):
            ctx.refuse(m, ("spec", name), f"{name[:-1]} '{key}' was removed, but "
                                          + BALANCE_WAY_OUT.format(what=name[:-1]))
    return ops


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
    ops += _balance_ops(ctx, m, customer_id, before, reason, Action.UPDATE)
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
    for key in list(removed):
        users = _contracts_billing_through(ctx, m.name, key, old[key])
        if users:
            removed.remove(key)
            ctx.refuse(m, ("spec", CONFIGS),
                       f"billing provider configuration '{key}' was removed, but {', '.join(users)} bills through "
                       "it (archiving it leaves that contract without a billing destination, and it cannot get "
                       "a new one); keep the configuration, or end the contract first (ending_before)")
    if removed:
        ids = [ctx.item_id(actual.address, CONFIGS, k) for k in removed]
        ops.append(operation(
            "archive_customer_billing_provider_configurations", m.address, Action.UPDATE,
            {"customer_id": actual.remote_id, "customer_billing_provider_configuration_ids": ids},
            manifest=m, reason=reason,
            changes=[Change(f"{CONFIGS}[{k}]", old[k], None, note="archive") for k in removed],
            items=[ItemEffect(CONFIGS, k, "archive") for k in removed]))
    return ops


def _contracts_billing_through(ctx: PlanContext, customer: str, key: str, config: dict[str, Any]) -> list[str]:
    """The customer's active contracts whose billing provider is this configuration (named by key,
    or by the same provider and delivery method): as the manifests say, or as the store holds
    those no manifest manages (unmanaged contracts keep billing)."""
    from ...timeutil import parse_timestamp, utc_now

    now = utc_now()
    users = []
    specs = {a: m.spec for a, m in ctx.desired.items() if m.kind == "Contract"}
    specs.update({a: o.spec for a, o in ctx.snapshot.objects.items()
                  if o.kind == "Contract" and a not in specs and not o.archived})
    for address in sorted(specs):
        spec = specs[address]
        if spec.get("customer") != customer:
            continue
        end = spec.get("ending_before")
        if end is not None and parse_timestamp(end) <= now:
            continue
        bpc = spec.get("billing_provider_configuration") or {}
        if bpc.get("billing_provider_configuration") == key or (
                "billing_provider" in bpc and bpc.get("billing_provider") == config.get("billing_provider")
                and bpc.get("delivery_method") == config.get("delivery_method")):
            users.append(address)
    return users


def _strip_key(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "key"}


def archive(ctx: PlanContext, actual) -> list:
    return [operation("archive_customer", actual.address, Action.ARCHIVE, {"id": actual.remote_id},
                      manifest=None, reason="pruned: not in manifests")]


register("Customer", create=create, update=update, archive=archive)
