"""Manifest spec (references by key) -> billing API request body (references by id).

The systematic renames of DESIGN §2 reversed: `product` -> `product_id` holding the product's
id, `applicable_products` -> `applicable_product_ids`, and so on; item `key`s are ours and are
not sent. Ids of objects created earlier in the same plan are placeholders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CREDIT_TYPE = "CreditType"  # not a manifest kind: a credit type is referenced by its name
# field -> (API field, kind of the referenced object)
REFERENCE_FIELDS: dict[str, tuple[str, str]] = {
    "customer": ("customer_id", "Customer"),
    "rate_card": ("rate_card_id", "RateCard"),
    "product": ("product_id", "Product"),
    "billable_metric": ("billable_metric_id", "BillableMetric"),
    # Credit types are named, not managed: the id of the one the backend lists by that name.
    "credit_type": ("credit_type_id", CREDIT_TYPE),
    "custom_credit_type": ("custom_credit_type_id", CREDIT_TYPE),
    "fiat_credit_type": ("fiat_credit_type_id", CREDIT_TYPE),
    "from": ("from_contract_id", "Contract"),  # a contract's transition.from
    "invoice_contract": ("invoice_contract_id", "Contract"),  # a customer-level commit's
}
REFERENCE_LIST_FIELDS: dict[str, tuple[str, str]] = {
    "applicable_products": ("applicable_product_ids", "Product"),
    "composite_products": ("composite_product_ids", "Product"),
    "applicable_contracts": ("applicable_contract_ids", "Contract"),  # customer-level commits and credits
}
# Manifest-only fields: desired state that the API takes through a later edit, not at create.
NOT_SENT = frozenset({"key", "quantity_updates", "seat_updates"})

IdOf = Callable[[str, str], str]  # (kind, key) -> id or placeholder


def to_api(value: Any, id_of: IdOf) -> Any:
    if isinstance(value, list):
        return [to_api(v, id_of) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in NOT_SENT:
            continue
        if name in REFERENCE_FIELDS and isinstance(item, str):
            api_name, kind = REFERENCE_FIELDS[name]
            out[api_name] = id_of(kind, item)
        elif name in REFERENCE_LIST_FIELDS and isinstance(item, list):
            api_name, kind = REFERENCE_LIST_FIELDS[name]
            out[api_name] = [id_of(kind, k) for k in item]
        else:
            out[name] = to_api(item, id_of)
    return out
