"""Rate-card migrations (issue 14.4): for every contract on rate card A, a new contract manifest on
rate card B starting at T that supersedes (or renews) it, written beside the old contract's file
as a change to review and apply like any other.

What the new contract (key `<old key>-<YYYYMMDD of T>`) takes from the old one:
- the customer, `usage_statement_schedule`, `billing_provider_configuration`, and the two settings
  its carried terms depend on (`multiplier_override_prioritization`,
  `scheduled_charges_on_usage_invoices`); `ending_before` when the old contract ends after T;
- the usage filter in force at T (the manifest's, starting with the new contract; one that starts
  after T keeps its starting_at);
- overrides still running after T (starting at T when they started before); an override specific
  to commits is left out (commits are not carried: it would name nothing);
- scheduled charges with occurrences at or after T, as those remaining occurrences (a recurring
  schedule that started before T becomes its remaining schedule_items, at their original dates).
Not carried: commits and credits (a RENEWAL rolls their balances over), subscriptions, recurring
commits and credits, discounts, professional services, thresholds, name, custom fields.

Which contracts: `rate_card: A`, or a `rate_card_alias` that names A at the contract's start (the
card the API resolved it to; later alias moves do not change an existing contract). Contracts that
end at or before T are left alone, as are contracts that start at or after T (a transition must
start after the contract it replaces), reported as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .canonical import canonicalize
from .manifests.document import Manifest
from .rating.schedule import occurrences
from .timeutil import format_timestamp, parse_timestamp

TRANSITION_TYPES = ("SUPERSEDE", "RENEWAL")
CARRIED_AS_IS = ("customer", "usage_statement_schedule", "billing_provider_configuration",
                 "multiplier_override_prioritization", "scheduled_charges_on_usage_invoices")
_COMMIT_SPECIFIC = ("commits", "recurring_commits", "any_commits_or_credits")


class MigrationError(ValueError):
    """The migration cannot be written; `problems` lists every reason (nothing was written)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewContract:
    old: Manifest
    key: str
    spec: dict[str, Any]
    path: Path  # beside the old contract's file
    left_out: tuple[str, ...] = ()  # what of the old contract was not carried, for the output


@dataclass
class Migration:
    contracts: list[NewContract] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (address, why)


def _t(value: Any) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) else value


def card_of(contract: dict[str, Any], cards: dict[str, dict[str, Any]]) -> str | None:
    """The rate card a contract is on: rate_card, or the card its alias names at its start."""
    if contract.get("rate_card"):
        return contract["rate_card"]
    alias, start = contract.get("rate_card_alias"), _t(contract["starting_at"])
    for key in sorted(cards):
        for a in cards[key].get("aliases") or []:
            if a.get("name") == alias and (_t(a.get("starting_at")) or start) <= start \
                    and (a.get("ending_before") is None or start < _t(a["ending_before"])):
                return key
    return None


def plan_migration(manifests: Sequence[Manifest], from_card: str, to_card: str,
                   at: datetime, transition_type: str = "SUPERSEDE", customers: Iterable[str] = ()) -> Migration:
    """The new contracts to write (nothing is written). Raises MigrationError listing every problem."""
    cards = {m.name: m.spec for m in manifests if m.kind == "RateCard"}
    contracts = {m.name: m for m in manifests if m.kind == "Contract"}
    known_customers = {m.name for m in manifests if m.kind == "Customer"}
    wanted = set(customers)
    problems = [f"RateCard/{key} is not in the manifests{_hint(key, cards)}"
                for key in dict.fromkeys((from_card, to_card)) if key not in cards]
    problems += [f"Customer/{key} (--customer) is not in the manifests{_hint(key, known_customers)}"
                 for key in sorted(wanted - known_customers)]
    if from_card == to_card:
        problems.append("--from-rate-card and --to-rate-card name the same rate card")
    if transition_type not in TRANSITION_TYPES:
        problems.append(f"--type must be one of {', '.join(TRANSITION_TYPES)}")
    if problems:
        raise MigrationError(problems)
    replaced = {m.spec["transition"]["from"]: m for m in contracts.values() if m.spec.get("transition")}
    stamp = f"{at:%Y%m%d}"
    out = Migration()
    for key in sorted(contracts):
        old = contracts[key]
        spec = old.spec
        if card_of(spec, cards) != from_card or (wanted and spec["customer"] not in wanted):
            continue
        end = _t(spec.get("ending_before"))
        if end is not None and end <= at:
            continue  # ended before T: nothing to migrate
        if _t(spec["starting_at"]) >= at:
            out.skipped.append((old.address, f"starts at or after {format_timestamp(at)}; a transition must "
                                             f"start after the contract it replaces (set its rate_card to {to_card} "
                                             f"and plan with --replace {old.address} instead)"))
            continue
        new_key = f"{key}-{stamp}"
        path = Path(old.file).parent / f"{new_key}.yaml"  # Manifest.file: as the loader showed it
        if new_key in contracts:
            problems.append(f"Contract/{new_key} already exists ({contracts[new_key].file}); migrating "
                            f"{old.address} at {format_timestamp(at)} would write that key: remove or rename it first")
            continue
        if path.exists():
            problems.append(f"{path} already exists; migrating {old.address} would overwrite it: move it first")
            continue
        if key in replaced:
            problems.append(f"{old.address} is already replaced by {replaced[key].address} (its transition); "
                            "migrate that contract instead")
            continue
        new_spec, left_out = _new_spec(spec, to_card, at, transition_type, key)
        out.contracts.append(NewContract(old, new_key, new_spec, path, tuple(left_out)))
    if problems:
        raise MigrationError(problems)
    return out


def _hint(key: str, known: Iterable[str]) -> str:
    from .manifests.references import suggest

    return suggest(key, known, "such objects")


def _new_spec(old: dict[str, Any], to_card: str, at: datetime, transition_type: str,
              old_key: str) -> tuple[dict[str, Any], list[str]]:
    t = format_timestamp(at)
    spec: dict[str, Any] = {"customer": old["customer"], "rate_card": to_card, "starting_at": t}
    end = old.get("ending_before")
    if end is not None:
        spec["ending_before"] = end
    for name in CARRIED_AS_IS[1:]:
        if name in old:
            spec[name] = old[name]
    left_out = [f"{name}[{item['key']}]" for name in ("commits", "credits", "subscriptions", "recurring_commits",
                                                       "recurring_credits", "discounts", "professional_services")
                for item in old.get(name, [])]
    uf = old.get("usage_filter")
    if uf:
        starts = _t(uf.get("starting_at"))
        spec["usage_filter"] = {k: v for k, v in uf.items() if k != "starting_at"} \
            if starts is None or starts <= at else uf
    overrides = []
    for o in old.get("overrides", []):
        if o.get("ending_before") is not None and _t(o["ending_before"]) <= at:
            continue
        if any(name in s for s in o.get("override_specifiers", []) for name in _COMMIT_SPECIFIC):
            left_out.append(f"overrides[{o['key']}] (specific to commits)")
            continue
        overrides.append({**o, "starting_at": max(o["starting_at"], t, key=parse_timestamp)})
    if overrides:
        spec["overrides"] = overrides
    charges = [c for c in (_remaining_charge(sc, at) for sc in old.get("scheduled_charges", [])) if c]
    if charges:
        spec["scheduled_charges"] = charges
    spec["transition"] = {"from": old_key, "type": transition_type}
    return canonicalize(spec), left_out


def _remaining_charge(charge: dict[str, Any], at: datetime) -> dict[str, Any] | None:
    """The part of a scheduled charge at or after T, at its original dates; None when none is left."""
    schedule = charge["schedule"]
    recurring = schedule.get("recurring_schedule")
    if recurring is not None and _t(recurring["starting_at"]) >= at and not schedule.get("schedule_items"):
        return charge
    items = []
    for when, quantity, unit_price, total in occurrences(schedule):
        if when < at:
            continue
        if quantity == 1:
            items.append({"timestamp": format_timestamp(when), "amount": total})
        else:
            items.append({"timestamp": format_timestamp(when), "quantity": quantity, "unit_price": unit_price})
    if not items:
        return None
    rest = {k: v for k, v in schedule.items() if k not in ("schedule_items", "recurring_schedule")}
    return {**charge, "schedule": {**rest, "schedule_items": items}}


def write_migration(migration: Migration) -> list[Path]:
    """Write each new contract's manifest (in the form `fmt` writes); the paths written."""
    from .manifests.export import dump_document, manifest_document
    from .manifests.safe_write import UnsafePath, write_under

    written = []
    for new in migration.contracts:
        text = dump_document(manifest_document("Contract", new.key, _plain(new.spec)))
        try:
            written.append(write_under(new.path.parent, (new.path.name,), text))
        except (UnsafePath, OSError) as exc:
            done = f" (written before it: {', '.join(map(str, written))})" if written else ""
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise MigrationError([f"cannot write {new.path}: {reason}{done}"]) from None
    return written


def _plain(value: Any) -> Any:
    """Whole Decimals as ints, so YAML shows 100000, not 100000.0."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value
