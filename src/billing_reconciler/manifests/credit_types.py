"""Rules about credit types (pricing units) that need no backend: a rate card prices in its fiat
credit type (USD cents unless `fiat_credit_type` says otherwise) or in a custom one, and a rate in
a custom credit type needs the card's conversion of that type into the fiat one (the API's
`credit_type_conversions`: usage no balance in that type pays is billed in fiat at that rate).
Whether a named credit type exists is the backend's to say: plan/credit_types.py."""

from __future__ import annotations

from collections.abc import Iterator

from ..money import USD_CREDIT_TYPE_NAME
from . import model as m
from .errors import Path

Finding = tuple[Path, str]


def rate_card_conversions(base: Path, spec: m.RateCardSpec) -> Iterator[Finding]:
    fiat = spec.fiat_credit_type or USD_CREDIT_TYPE_NAME
    converted: dict[str, int] = {}
    for i, conversion in enumerate(spec.credit_type_conversions or []):
        name = conversion.custom_credit_type
        path = (*base, "credit_type_conversions", i, "custom_credit_type")
        if name in converted:
            yield path, f"{name!r} is converted twice (also at credit_type_conversions[{converted[name]}]); keep one"
        elif name == fiat:
            yield path, f"{name!r} is the card's fiat credit type: it needs no conversion; remove this one"
        converted.setdefault(name, i)
    for i, rate in enumerate(spec.rates or []):
        name = rate.credit_type
        if name is None or name == fiat or name in converted:
            continue
        yield (*base, "rates", i, "credit_type"), (
            f"this rate is priced in {name!r}, but the card has no conversion of it into {fiat!r}; add "
            f"credit_type_conversions: [{{custom_credit_type: {name}, fiat_per_custom_credit: <{fiat} per one {name}>}}]")
