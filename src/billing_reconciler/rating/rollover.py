"""Rollover of one-off commits and credits into a renewal contract (a pure computation).

Metronome rolls a one-off commit's or credit's unused balance over only on a contract transition
(`transition: {type: RENEWAL}`): every rollover ledger entry names the `new_contract_id`, and the
rolled-over commit records `rolled_over_from`. The engine rates a renewed contract after the one it
renews and adds `renewal_balances` (the old contract's balances after its usage) to the new one's.

Decisions where the sources are silent:
- Recurring commits' generated balances roll over the same way (the API: rollover_fraction "controls
  how much of an individual unexpired commit will roll over upon contract transition").
- Only balances still open at the transition roll over: a segment that started before it and
  ends at or after it ("unexpired"; a commit running to the contract's end, the usual case, ends
  exactly at the transition). Expired segments and segments not yet started do not.
- Amount: rollover_fraction × the segment's unused balance, to the cent half up (the same rule as
  between the periods of a recurring commit, balances.carried_over). One rolled-over balance per
  segment (and per seat), nothing when it comes to 0.
- POSTPAID commits are left out: their unmet part is trued up (balances.postpaid_trueups); what
  rolling it over into a renewal would do to the true-up is not documented.
- The rolled-over balance keeps the original's kind, name, product, scope, priority and seat
  and is usable from the transition until `ending_before` (the new contract's end or another date
  the transition chooses). A rolled-over commit is already paid: it is never invoiced again. In the
  new contract its key is `<old contract>/<key>` (the renewal may reuse the key for a new commit).
- SUPERSEDE carries nothing over (the API's rollover ledger entries are renewal entries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from .balances import Segment, carried_over


def rollover_segments(segments: Iterable[Segment], at: datetime, ending_before: datetime) -> list[Segment]:
    """The balances a RENEWAL at `at` carries into the new contract, usable in [at, ending_before)."""
    out: list[Segment] = []
    for s in segments:
        if s.postpaid or not (s.start < at <= s.end):
            continue
        amount = carried_over(s)
        if amount > 0:
            out.append(replace(s, start=at, end=ending_before, amount=amount, used=Decimal(0), opened=False,
                               chain=None, generation=0))
    return out


def renewal_balances(contract: Mapping[str, Any], start: datetime, ending_before: datetime,
                     rated: Mapping[str, list[Segment]]) -> list[Segment]:
    """What a contract that RENEWs another (already rated: its balances in `rated`) starts with."""
    transition = contract.get("transition") or {}
    old = transition.get("from")
    if transition.get("type") != "RENEWAL" or old not in rated:
        return []
    # Amounts are settled when each opens (Ledger._open), after the old contract's usage before
    # `start` was drawn: the old contract may still be drawing (several contracts drawn together).
    return [replace(s, key=f"{old}/{s.key}", start=start, end=ending_before, amount=Decimal(0), used=Decimal(0),
                    opened=False, chain=None, generation=0, rolled_from=(s,))
            for s in rated[old] if not s.postpaid and s.rollover_fraction and s.start < start <= s.end]
