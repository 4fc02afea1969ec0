"""Contract: create with every term inline; later, one edit_contract carrying all of its
add_/update_/archive_/remove_ keys, plus set_usage_filter and custom field calls.

Billing history is append-only: removed commits, credits and scheduled charges are archived, a
changed override is removed and added again, and fields the API cannot change are refused with
the field named and the way out.
"""

from __future__ import annotations

import re
from typing import Any

from ...canonical import dumps
from ...money import USD_CREDIT_TYPE_ID
from ...specform import without_default_credit_type
from ..context import PlanContext, schedule_item_id
from ..diff import field_changes, keyed
from ..operations import Action, Change, ItemEffect, ref
from .base import immutable, operation, register
from .customers import custom_field_ops

CREATE_ONLY = ("customer", "starting_at", "rate_card", "rate_card_alias", "usage_statement_schedule",
               "multiplier_override_prioritization", "scheduled_charges_on_usage_invoices", "transition")
WAY_OUT = ("set ending_before on this contract and add a new Contract with a new key, "
           "or plan with --replace {address} to archive it and create it again")

# Keyed lists: API edit keys (add, archive-or-remove, update).
ADD_KEY = {name: f"add_{name}" for name in (
    "commits", "credits", "overrides", "scheduled_charges", "discounts", "subscriptions",
    "recurring_commits", "recurring_credits", "professional_services")}
ARCHIVE_KEY = {"commits": "archive_commits", "credits": "archive_credits",
               "scheduled_charges": "archive_scheduled_charges", "overrides": "remove_overrides"}
ITEM_ID_FIELD = {"commits": "commit_id", "credits": "credit_id", "scheduled_charges": "scheduled_charge_id",
                 "subscriptions": "subscription_id", "recurring_commits": "recurring_commit_id",
                 "recurring_credits": "recurring_credit_id"}
# How a keyed item is stopped, and how one of its fields the API cannot change is changed: one
# fact per list, used by every refusal (removal, field change, schedule change).
ENDED_NOT_ARCHIVED = frozenset({"subscriptions", "recurring_commits", "recurring_credits"})
KEPT_AS_IS = frozenset({"discounts", "professional_services"})  # neither archived nor edited


def item_name(name: str) -> str:
    """`recurring_credits` -> `recurring credit`."""
    return name[:-1].replace("_", " ")


def how_to_stop(name: str) -> str:
    """Why an item of list `name` cannot be removed from the manifest and what to do instead."""
    what = item_name(name)
    if name in ENDED_NOT_ARCHIVED:
        return f"a {what} cannot be archived; keep it and set its ending_before"
    return f"a {what} cannot be archived through contract edits; keep it"


def how_to_change(name: str, address: str) -> str:
    """The way out when a field of an item of list `name` cannot change."""
    what = item_name(name)
    if name in ENDED_NOT_ARCHIVED:
        return f"keep it, set its ending_before, and add the changed {what} under a new key"
    if name in KEPT_AS_IS:
        return f"keep it as it is, or plan with --replace {address} to archive the contract and create it again"
    return f"remove it and add the changed {what} under a new key"


NO_REMOVAL = {name: how_to_stop(name) for name in sorted(ENDED_NOT_ARCHIVED | KEPT_AS_IS)}
USAGE_FILTERS = "usage_filter_schedule"


class Edit:
    """Accumulates one edit_contract body and what it does, for one contract."""

    def __init__(self, customer_id: str, contract_id: str):
        self.body: dict[str, Any] = {"customer_id": customer_id, "contract_id": contract_id}
        self.changes: list[Change] = []
        self.items: list[ItemEffect] = []

    def add(self, key: str, value: Any) -> None:
        self.body.setdefault(key, []).append(value)

    @property
    def empty(self) -> bool:
        return len(self.body) == 2


def contract_api(ctx: PlanContext, m, value: Any) -> Any:
    """Manifest terms -> API body, resolving references inside the contract too."""
    body = ctx.api(value)
    spec = m.spec
    if isinstance(body, dict) and "billing_provider_configuration" in body:
        bpc = dict(body["billing_provider_configuration"])
        config_key = bpc.pop("billing_provider_configuration", None)
        if config_key is not None:
            customer = f"Customer/{spec['customer']}"
            bpc["billing_provider_configuration_id"] = ctx.item_id(customer, "customer_billing_provider_configurations",
                                                                   config_key)
        body["billing_provider_configuration"] = bpc
    for override in body.get("overrides", []) if isinstance(body, dict) else []:
        _override_specifier_ids(ctx, m, override)
    for name in ("recurring_commits", "recurring_credits"):
        for item in body.get(name, []) if isinstance(body, dict) else []:
            _typed_amounts(item)
    for sub in body.get("subscriptions", []) if isinstance(body, dict) else []:
        if "seat_config" in sub:
            # The API requires initial_seat_ids; the canonical form drops it when it is empty.
            sub["seat_config"] = {"initial_seat_ids": [], **sub["seat_config"]}
    return body


def _typed_amounts(item: dict[str, Any]) -> None:
    """The API types a recurring commit's or credit's amounts with a credit type: USD cents
    unless the manifest names another."""
    for amount in ("access_amount", "invoice_amount"):
        if amount in item:
            item[amount] = {"credit_type_id": USD_CREDIT_TYPE_ID, **item[amount]}


def _override_specifier_ids(ctx: PlanContext, m, override: dict[str, Any]) -> None:
    for specifier in override.get("override_specifiers", []):
        for name, api_name, lists in (("commits", "commit_ids", ("commits",)),
                                      ("recurring_commits", "recurring_commit_ids", ("recurring_commits",)),
                                      ("any_commits_or_credits", "any_commit_or_credit_ids",
                                       ("commits", "credits", "recurring_commits", "recurring_credits"))):
            if name in specifier:
                keys = specifier.pop(name)
                specifier[api_name] = [_term_id(ctx, m, lists, k) for k in keys]


def _term_id(ctx: PlanContext, m, lists: tuple[str, ...], key: str) -> str:
    for list_name in lists:
        if any(item["key"] == key for item in m.spec.get(list_name, [])):
            return ctx.item_id(m.address, list_name, key)
    return ref(m.address, lists[0], key)


def _filter_key(spec: dict[str, Any]) -> str:
    return spec["usage_filter"].get("starting_at", spec["starting_at"])


def _names_new_items(m, body: dict[str, Any]) -> bool:
    """Whether an item body names an item of this contract that has no id yet (a placeholder)."""
    return re.search(re.escape("${" + m.address) + r"\.[a-z_]+\[", dumps(body)) is not None


def create(ctx: PlanContext, m) -> list:
    spec = m.spec
    body = contract_api(ctx, m, spec)
    # A commit-specific override names commits by id; they have none before the create, so such
    # overrides follow in an edit_contract, as add_overrides with the ids the create gave.
    later = [(o, b) for o, b in zip(spec.get("overrides", []), body.get("overrides", [])) if _names_new_items(m, b)]
    if later:
        body["overrides"] = [b for b in body["overrides"] if not _names_new_items(m, b)] or None
        if body["overrides"] is None:
            del body["overrides"]
    deferred = {o["key"] for o, _ in later}
    items = [ItemEffect(name, item["key"], "add", item) for name in ADD_KEY for item in spec.get(name, [])
             if not (name == "overrides" and item["key"] in deferred)]
    if "usage_filter" in spec:
        items.append(ItemEffect(USAGE_FILTERS, _filter_key(spec), "add", spec["usage_filter"]))
    ops = [operation("create_contract", m.address, Action.CREATE, body, manifest=m,
                     reason="new in manifests", changes=field_changes(None, spec), items=items)]
    # Scheduled quantity and seat changes are not create fields: they follow in one edit.
    edit = Edit(ref(f"Customer/{spec['customer']}"), ref(m.address))
    for sub in spec.get("subscriptions", []):
        update = _subscription_schedule_update(ctx, m, {}, sub)
        if update:
            edit.add("update_subscriptions", update)
    for override, override_body in later:
        edit.add("add_overrides", override_body)
        edit.items.append(ItemEffect("overrides", override["key"], "add", override))
    if not edit.empty:
        ops.append(operation("edit_contract", m.address, Action.CREATE, edit.body, manifest=m,
                             reason="new in manifests: scheduled subscription changes and commit-specific overrides",
                             items=edit.items))
    return ops


def update(ctx: PlanContext, m, actual, reason: str) -> list:
    before, after = actual.spec, m.spec
    if immutable(ctx, m, before, CREATE_ONLY, WAY_OUT.format(address=m.address)):
        return []
    customer_id = ctx.id_of("Customer", after["customer"])
    edit = Edit(customer_id, actual.remote_id)
    _top_level(ctx, m, before, after, edit)
    for name in ADD_KEY:
        _keyed_list(ctx, m, actual, name, edit)
    _thresholds(ctx, before, after, edit)
    later = _defer_overrides_naming_new_items(m, edit, Edit(customer_id, actual.remote_id))
    ops = []
    if not edit.empty:
        ops.append(operation("edit_contract", m.address, Action.UPDATE, edit.body, manifest=m, reason=reason,
                             changes=edit.changes, items=edit.items))
    if not later.empty:
        ops.append(operation("edit_contract", m.address, Action.UPDATE, later.body, manifest=m,
                             reason=f"{reason}: overrides specific to the commits added", items=later.items))
    ops += _added_subscription_schedules(ctx, m, actual, customer_id, reason)
    ops += _usage_filter(ctx, m, actual, customer_id, reason)
    ops += custom_field_ops(ctx, m, "contract", actual.remote_id, before.get("custom_fields", {}),
                            after.get("custom_fields", {}), reason)
    return ops


def _added_subscription_schedules(ctx: PlanContext, m, actual, customer_id: str, reason: str) -> list:
    """A second edit_contract for the scheduled quantity and seat changes of the subscriptions the
    first one adds: add_subscriptions entries take none (as at create), and update_subscriptions
    needs the id the first edit gives the subscription."""
    existing = keyed(actual.spec.get("subscriptions"))
    edit = Edit(customer_id, actual.remote_id)
    for sub in m.spec.get("subscriptions", []):
        if sub["key"] not in existing:
            update = _subscription_schedule_update(ctx, m, {}, sub)
            if update:
                edit.add("update_subscriptions", update)
    if edit.empty:
        return []
    return [operation("edit_contract", m.address, Action.UPDATE, edit.body, manifest=m,
                      reason=f"{reason}: scheduled changes of the added subscriptions")]


def _defer_overrides_naming_new_items(m, edit: Edit, later: Edit) -> Edit:
    """Overrides that name commits the same edit adds cannot be sent with it (those commits have
    no ids yet): they move to a second edit_contract, with their item effects."""
    adds = edit.body.get("add_overrides", [])
    added = [e for e in edit.items if e.list_name == "overrides" and e.effect == "add"]
    keep = []
    for body, effect in zip(adds, added):  # both in the order _keyed_list adds them
        if _names_new_items(m, body):
            later.add("add_overrides", body)
            later.items.append(effect)
            edit.items.remove(effect)
        else:
            keep.append(body)
    if len(keep) != len(adds):
        if keep:
            edit.body["add_overrides"] = keep
        else:
            del edit.body["add_overrides"]
    return later


def _top_level(ctx: PlanContext, m, before: dict, after: dict, edit: Edit) -> None:
    for name, key in (("name", "update_contract_name"), ("ending_before", "update_contract_end_date"),
                      ("net_payment_terms_days", "update_net_payment_terms_days")):
        if before.get(name) != after.get(name):
            edit.body[key] = after.get(name)
            edit.changes.append(Change(name, before.get(name), after.get(name)))
    old, new = before.get("billing_provider_configuration"), after.get("billing_provider_configuration")
    if old != new:
        if old is None:
            bpc = contract_api(ctx, m, {"billing_provider_configuration": new})["billing_provider_configuration"]
            edit.body["add_billing_provider_configuration_update"] = {
                "billing_provider_configuration": bpc,
                "schedule": {"effective_at": "START_OF_CURRENT_PERIOD"},
            }
            edit.changes.append(Change("billing_provider_configuration", None, new))
        else:
            ctx.refuse(m, ("spec", "billing_provider_configuration"),
                       "a contract's billing provider configuration can only be added when it has none; "
                       + WAY_OUT.format(address=m.address))


def _keyed_list(ctx: PlanContext, m, actual, name: str, edit: Edit) -> None:
    # Compared as the backend reads them back: the default (USD) credit type means the same as none.
    old, new = keyed(actual.spec.get(name)), keyed([without_default_credit_type(i) for i in m.spec.get(name, [])])
    positions = {item["key"]: i for i, item in enumerate(m.spec.get(name, []))}
    for key in sorted(set(new) - set(old)):
        edit.add(ADD_KEY[name], _item_body(ctx, m, actual, name, new[key]))
        edit.changes.append(Change(f"{name}[{key}]", None, new[key]))
        edit.items.append(ItemEffect(name, key, "add", new[key]))
    for key in sorted(set(old) - set(new)):
        if name in NO_REMOVAL:
            ctx.refuse(m, ("spec", name), f"{item_name(name)} '{key}' was removed, but {NO_REMOVAL[name]}")
            continue
        edit.add(ARCHIVE_KEY[name], {"id": ctx.item_id(actual.address, name, key)})
        note = "remove" if name == "overrides" else "archive"
        edit.changes.append(Change(f"{name}[{key}]", old[key], None, note=note))
        edit.items.append(ItemEffect(name, key, "archive"))
    for key in sorted(set(old) & set(new)):
        if old[key] == new[key]:
            continue
        path = ("spec", name, positions[key])
        if name == "overrides":
            # Overrides cannot be edited: remove the old one and add the new one (-/+).
            edit.add("remove_overrides", {"id": ctx.item_id(actual.address, name, key)})
            edit.add("add_overrides", _item_body(ctx, m, actual, name, new[key]))
            # Only the fields that differ, each marked as forcing the item's replacement.
            edit.changes += [Change(f"{name}[{key}].{c.path}" if c.path else f"{name}[{key}]", c.before, c.after,
                                    note="replace") for c in field_changes(old[key], new[key])]
            edit.items += [ItemEffect(name, key, "archive"), ItemEffect(name, key, "add", new[key])]
            continue
        update = UPDATERS.get(name, _refuse_update)(ctx, m, actual, name, old[key], new[key], path)
        if update is None:
            continue
        edit.add(f"update_{name}", update)
        edit.changes += [Change(f"{name}[{key}].{c.path}" if c.path else f"{name}[{key}]", c.before, c.after)
                         for c in field_changes(old[key], new[key])]
        edit.items.append(ItemEffect(name, key, "update", new[key]))


def _item_body(ctx: PlanContext, m, actual, name: str, item: dict[str, Any]) -> dict[str, Any]:
    body = contract_api(ctx, m, {name: [item]})[name][0]
    config = body.get("subscription_config")
    if config is not None:
        # A recurring credit added later links to the subscription's real id, not its temporary_id.
        for sub in actual.spec.get("subscriptions", []):
            if sub.get("temporary_id") == config["subscription_id"]:
                config["subscription_id"] = ctx.item_id(actual.address, "subscriptions", sub["key"])
    return body


def _refuse_update(ctx, m, actual, name, old, new, path) -> None:
    ctx.refuse(m, path, f"{item_name(name)} '{new['key']}' cannot be edited through the billing API; "
                        + how_to_change(name, m.address))
    return None


def _refuse_fields(ctx, m, path, old: dict, new: dict, allowed: set[str], name: str) -> bool:
    bad = sorted(k for k in set(old) | set(new) if k not in allowed and old.get(k) != new.get(k))
    for k in bad:
        ctx.refuse(m, (*path, k), f"{k} of {item_name(name)} '{new['key']}' cannot be changed after it is created; "
                                  + how_to_change(name, m.address))
    return bool(bad)


def _schedule_delta(owner_id: str, schedule: str, old: dict | None, new: dict | None) -> dict[str, Any] | None:
    old_items = (old or {}).get("schedule_items", [])
    new_items = (new or {}).get("schedule_items", [])
    delta: dict[str, Any] = {}
    added = [i for i in new_items if i not in old_items]
    removed = [i for i in old_items if i not in new_items]
    if added:
        delta["add_schedule_items"] = added
    if removed:
        delta["remove_schedule_items"] = [{"id": schedule_item_id(owner_id, schedule, i)} for i in removed]
    return delta or None


COMMIT_UPDATABLE = {"key", "name", "description", "priority", "rollover_fraction", "applicable_products",
                    "applicable_product_tags", "product", "rate_type", "access_schedule", "invoice_schedule",
                    "netsuite_sales_order_id", "hierarchy_configuration"}


def _update_commit(ctx, m, actual, name, old, new, path):
    allowed = COMMIT_UPDATABLE - ({"invoice_schedule"} if name == "credits" else set())
    what = item_name(name)
    if _refuse_fields(ctx, m, path, old, new, allowed, name):
        return None
    for schedule in ("access_schedule", "invoice_schedule"):
        o, n = old.get(schedule) or {}, new.get(schedule) or {}
        rest_o = {k: v for k, v in o.items() if k != "schedule_items"}
        rest_n = {k: v for k, v in n.items() if k != "schedule_items"}
        if rest_o != rest_n:
            ctx.refuse(m, (*path, schedule), f"only the schedule_items of a {what}'s {schedule} can change; "
                                             + how_to_change(name, m.address))
            return None
    item_id = ctx.item_id(actual.address, name, new["key"])
    body: dict[str, Any] = {ITEM_ID_FIELD[name]: item_id}
    api_old, api_new = ctx.api(old), ctx.api(new)
    for field in sorted(set(api_old) | set(api_new)):
        if field in ("access_schedule", "invoice_schedule") or api_old.get(field) == api_new.get(field):
            continue
        body[field] = api_new.get(field)
    for schedule in ("access_schedule", "invoice_schedule"):
        delta = _schedule_delta(item_id, schedule, old.get(schedule), new.get(schedule))
        if delta:
            body[schedule] = delta
    return body


def _update_scheduled_charge(ctx, m, actual, name, old, new, path):
    if _refuse_fields(ctx, m, path, old, new, {"key", "schedule", "netsuite_sales_order_id"}, name):
        return None
    o, n = old["schedule"], new["schedule"]
    if {k: v for k, v in o.items() if k != "schedule_items"} != {k: v for k, v in n.items() if k != "schedule_items"}:
        ctx.refuse(m, (*path, "schedule"), "only the schedule_items of a scheduled charge can change; "
                                           + how_to_change(name, m.address))
        return None
    item_id = ctx.item_id(actual.address, name, new["key"])
    body: dict[str, Any] = {"scheduled_charge_id": item_id}
    delta = _schedule_delta(item_id, "schedule", o, n)
    if delta:
        body["invoice_schedule"] = delta
    if old.get("netsuite_sales_order_id") != new.get("netsuite_sales_order_id"):
        body["netsuite_sales_order_id"] = new.get("netsuite_sales_order_id")
    return body


def _update_recurring(ctx, m, actual, name, old, new, path):
    allowed = {"key", "access_amount", "invoice_amount", "ending_before", "rate_type", "proration_rounding"}
    if _refuse_fields(ctx, m, path, old, new, allowed, name):
        return None
    body: dict[str, Any] = {ITEM_ID_FIELD[name]: ctx.item_id(actual.address, name, new["key"])}
    for field in ("access_amount", "invoice_amount"):
        o, n = old.get(field) or {}, new.get(field) or {}
        if {k: v for k, v in o.items() if k not in ("quantity", "unit_price")} != \
                {k: v for k, v in n.items() if k not in ("quantity", "unit_price")}:
            ctx.refuse(m, (*path, field), f"only quantity and unit_price of {field} can change")
            return None
        delta = {k: n.get(k) for k in ("quantity", "unit_price") if o.get(k) != n.get(k)}
        if delta:
            body[field] = delta
    for field in ("ending_before", "rate_type", "proration_rounding"):
        if old.get(field) != new.get(field):
            body[field] = new.get(field)
    return body


def _subscription_schedule_update(ctx, m, old: dict, new: dict) -> dict[str, Any] | None:
    """update_subscriptions entry for newly scheduled quantity/seat changes (append-only)."""
    body: dict[str, Any] = {}
    new_q = [q for q in new.get("quantity_updates", []) if q not in old.get("quantity_updates", [])]
    if new_q:
        body["quantity_updates"] = new_q
    seats: dict[str, Any] = {}
    for kind, entries in (new.get("seat_updates") or {}).items():
        fresh = [e for e in entries if e not in (old.get("seat_updates") or {}).get(kind, [])]
        if fresh:
            seats[kind] = fresh
    if seats:
        body["seat_updates"] = seats
    if not body:
        return None
    return {"subscription_id": ctx.item_id(m.address, "subscriptions", new["key"]), **body}



def _update_subscription(ctx, m, actual, name, old, new, path):
    # update_subscriptions takes ending_before, quantity and seat updates and the
    # QUANTITY_ONLY -> SEAT_BASED switch; nothing else of a subscription can change.
    allowed = {"key", "ending_before", "quantity_updates", "seat_updates", "proration",
               "quantity_management_mode", "seat_config"}
    fixed = sorted(k for k in set(old) | set(new) if k not in allowed and old.get(k) != new.get(k))
    if old["proration"] != new["proration"]:
        fixed.append("proration")
    for field in fixed:
        ctx.refuse(m, (*path, field), f"{field} of subscription '{new['key']}' cannot be changed after it is created; "
                                              + how_to_change(name, m.address))
    if fixed:
        return None
    for field in ("quantity_updates",):
        if any(q not in new.get(field, []) for q in old.get(field, [])):
            ctx.refuse(m, (*path, field), "scheduled quantity changes are append-only; add a new entry instead "
                                          "of editing or removing one")
            return None
    body = _subscription_schedule_update(ctx, m, old, new) or {
        "subscription_id": ctx.item_id(actual.address, name, new["key"])}
    if old.get("ending_before") != new.get("ending_before"):
        body["ending_before"] = new.get("ending_before")
    old_mode = old.get("quantity_management_mode", "QUANTITY_ONLY")
    new_mode = new.get("quantity_management_mode", "QUANTITY_ONLY")
    if old_mode != new_mode or old.get("seat_config") != new.get("seat_config"):
        if old_mode == "QUANTITY_ONLY" and new_mode == "SEAT_BASED":
            body["quantity_management_mode_update"] = {
                "quantity_management_mode": "SEAT_BASED",
                "seat_config": {"seat_group_key": new["seat_config"]["seat_group_key"]},
            }
        else:
            ctx.refuse(m, (*path, "quantity_management_mode"),
                       "the only quantity management change the API allows is QUANTITY_ONLY -> SEAT_BASED; "
                       "seat changes go in seat_updates")
            return None
    return body


UPDATERS = {
    "commits": _update_commit,
    "credits": _update_commit,
    "scheduled_charges": _update_scheduled_charge,
    "recurring_commits": _update_recurring,
    "recurring_credits": _update_recurring,
    "subscriptions": _update_subscription,
}


# Nullable in update_*_threshold_configuration: manifest field -> API field.
THRESHOLD_CLEARABLE = {"discount_configuration": "discount_configuration", "custom_credit_type": "custom_credit_type_id"}


def _thresholds(ctx: PlanContext, before: dict, after: dict, edit: Edit) -> None:
    for name in ("spend_threshold_configuration", "prepaid_balance_threshold_configuration"):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if new is None:
            # No removal key exists: disabling is how a threshold is turned off.
            new = {**old, "is_enabled": False}
        key = ("add_" if old is None else "update_") + name
        body = ctx.api(new)
        # update_* is a partial update: a field the manifest no longer has is cleared with null.
        for field, api_field in THRESHOLD_CLEARABLE.items():
            if old is not None and field in old and field not in new:
                body[api_field] = None
        edit.body[key] = body
        edit.changes.append(Change(name, old, after.get(name)))


def _usage_filter(ctx: PlanContext, m, actual, customer_id: str, reason: str) -> list:
    old, new = actual.spec.get("usage_filter"), m.spec.get("usage_filter")
    if old == new:
        return []
    if new is None:
        ctx.refuse(m, ("spec",), "a usage filter cannot be removed (its schedule is append-only); set a new "
                                 "usage_filter with the group values it should route, and its starting_at")
        return []
    starting_at = new.get("starting_at")
    previous = (old or {}).get("starting_at", actual.spec["starting_at"])
    if starting_at is None or starting_at <= previous:
        ctx.refuse(m, ("spec", "usage_filter", "starting_at") if starting_at else ("spec", "usage_filter"),
                   f"set usage_filter.starting_at to when the new filter takes effect: set_usage_filter "
                   f"schedules it, and it must be after the current filter's start ({previous})")
        return []
    body = {"customer_id": customer_id, "contract_id": actual.remote_id, "group_key": new["group_key"],
            "group_values": new["group_values"], "starting_at": starting_at}
    return [operation("set_usage_filter", m.address, Action.UPDATE, body, manifest=m, reason=reason,
                      changes=field_changes({"usage_filter": old}, {"usage_filter": new}),
                      items=[ItemEffect(USAGE_FILTERS, starting_at, "add", new)])]


def archive(ctx: PlanContext, actual) -> list:
    body = {"customer_id": ctx.id_of("Customer", actual.spec["customer"]), "contract_id": actual.remote_id,
            "void_invoices": False}
    return [operation("archive_contract", actual.address, Action.ARCHIVE, body, manifest=None,
                      reason="pruned: not in manifests")]


register("Contract", create=create, update=update, archive=archive)
