"""What a contract transition changes in rating, besides routing (the old contract is not active
after its end, which the backend set at the new contract's start) and rollover (rollover.py).

Decisions where the sources are silent:
- The old contract bills nothing dated at or after its end: scheduled charges, commit purchases,
  subscription and professional-service charges from then on belong to the new contract (migrate
  carries the remaining scheduled charges over). A charge for service before the end that is
  invoiced at the end (an ARREARS subscription period ending then) stays.
- Its POSTPAID true-ups dated at or after the end follow the successor's
  `future_invoice_behavior.trueup`: AS_IS (the API's default) keeps them, REMOVE drops them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .schedule import DatedCharge


def successors(contracts: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Old contract key -> the transition of the contract that replaces it."""
    out: dict[str, Mapping[str, Any]] = {}
    for key in sorted(contracts):
        transition = contracts[key].get("transition")
        if transition and transition.get("from") in contracts:
            out.setdefault(transition["from"], transition)
    return out


def billed_before_end(charges: Iterable[DatedCharge], end: datetime) -> list[DatedCharge]:
    return [c for c in charges
            if c.at < end or (c.line.ending_before is not None and c.line.ending_before <= end)]


def keeps_trueups(transition: Mapping[str, Any]) -> bool:
    return (transition.get("future_invoice_behavior") or {}).get("trueup", "AS_IS") != "REMOVE"
