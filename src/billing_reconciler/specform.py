"""The one comparable form of a spec: what a manifest digest and a refreshed object both hash.

A manifest lists keyed items in the author's order; the API returns them in the order they were
made. Neither order means anything, so keyed lists are sorted by key and a rate card's rates by
their identity. A credit type (`credit_type`, `fiat_credit_type`) equal to the fiat USD type is
what the API fills in when none is named, so it is left out. A threshold configuration with `is_enabled: false` is how the API turns a
threshold off (it has no removal), so it means the same as none. Everything else is `canonical.canonicalize` (enum case, decimals,
timestamps, no empties), applied by the loader and the readers before this.
"""

from __future__ import annotations

from typing import Any

from . import canonical
from .money import USD_CREDIT_TYPE_NAME

# Lists whose items carry a `key`, in any object kind.
KEYED_LISTS = frozenset({
    "commits", "credits", "overrides", "scheduled_charges", "discounts", "subscriptions",
    "recurring_commits", "recurring_credits", "professional_services",
    "customer_billing_provider_configurations", "customer_revenue_system_configurations",
})


def rate_identity(rate: dict[str, Any]) -> tuple:
    return (rate["product"], tuple(sorted(rate.get("pricing_group_values", {}).items())),
            rate.get("billing_frequency") or "", rate["starting_at"])


THRESHOLDS = ("spend_threshold_configuration", "prepaid_balance_threshold_configuration")


def comparable(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in spec.items():
        if name in THRESHOLDS and isinstance(value, dict) and value.get("is_enabled") is False:
            continue
        if name in DEFAULTED_CREDIT_TYPES and value == USD_CREDIT_TYPE_NAME:
            continue  # a rate card's fiat type: the API always returns one, USD when none was given
        if name in KEYED_LISTS and isinstance(value, list):
            value = sorted((without_default_credit_type(v) for v in value), key=lambda item: item.get("key", ""))
        elif name == "rates" and isinstance(value, list):
            value = sorted((without_default_credit_type(v) for v in value), key=rate_identity)
        else:
            value = without_default_credit_type(value)
        out[name] = value
    return out


DEFAULTED_CREDIT_TYPES = frozenset({"credit_type", "fiat_credit_type"})


def without_default_credit_type(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_default_credit_type(v) for k, v in value.items()
                if not (k in DEFAULTED_CREDIT_TYPES and v == USD_CREDIT_TYPE_NAME)}
    if isinstance(value, list):
        return [without_default_credit_type(v) for v in value]
    return value


def spec_digest(spec: dict[str, Any]) -> str:
    return canonical.digest(comparable(spec))


def spec_text(spec: dict[str, Any]) -> str:
    """What the store keeps as an object's body: its digest is `spec_digest(spec)`."""
    return canonical.dumps(comparable(spec))
