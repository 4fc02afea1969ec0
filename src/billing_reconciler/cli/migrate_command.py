"""`migrate`: write transition contracts that move every contract on one rate card to another."""

from __future__ import annotations

import click

from .context import Settings, pass_settings
from .output import fail, fail_with_problems


def _timestamp(ctx, param, value: str):
    from ..timeutil import parse_timestamp

    try:
        return parse_timestamp(value)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 timestamp with a UTC offset, e.g. "
                                 f"2025-07-01T00:00:00Z ({exc})") from None


@click.command("migrate")
@click.option("--from-rate-card", "from_card", required=True, metavar="KEY",
              help="Rate card the contracts are on now (directly or through rate_card_alias).")
@click.option("--to-rate-card", "to_card", required=True, metavar="KEY", help="Rate card the new contracts use.")
@click.option("--at", "at", required=True, metavar="TIMESTAMP", callback=_timestamp,
              help="When the new contracts start and the old ones stop billing (e.g. 2025-07-01T00:00:00Z).")
@click.option("--type", "transition_type", type=click.Choice(["SUPERSEDE", "RENEWAL"], case_sensitive=False),
              default="SUPERSEDE", show_default=True,
              help="Transition type; RENEWAL also rolls over commit and credit balances per rollover_fraction.")
@click.option("--customer", "customers", multiple=True, metavar="KEY",
              help="Only this customer's contracts (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the files that would be written; write nothing.")
@pass_settings
def command(settings: Settings, from_card: str, to_card: str, at, transition_type: str,
            customers: tuple[str, ...], dry_run: bool) -> None:
    """Write, beside each contract on --from-rate-card, a new contract manifest on --to-rate-card
    starting --at, with `transition: {from: <old key>, type}`; review it with `plan`, then apply."""
    from ..manifests import load_manifests
    from ..migrate import MigrationError, plan_migration, write_migration

    result = load_manifests(settings.manifests_dir, cache=settings.manifest_cache())
    if not result.ok:
        fail_with_problems(result.problems)
    try:
        migration = plan_migration(result.manifests, from_card, to_card, at,
                                   transition_type.upper(), customers)
    except MigrationError as exc:
        for problem in exc.problems[:-1]:
            click.echo(f"Error: {problem}", err=True)
        fail(f"{exc.problems[-1]} (nothing was written)")
        return
    for address, why in migration.skipped:
        click.echo(f"Skipped {address}: {why}", err=True)
    if not migration.contracts:
        click.echo(f"No contract on RateCard/{from_card}" + (f" of {', '.join(customers)}" if customers else "")
                   + f" to migrate at {at:%Y-%m-%dT%H:%M:%SZ}: nothing to write.")
        return
    try:
        paths = [new.path for new in migration.contracts] if dry_run else write_migration(migration)
    except MigrationError as exc:
        fail(exc.problems[0])
        return
    verb = "Would write" if dry_run else "Wrote"
    for new, path in zip(migration.contracts, paths):
        left = f"; not carried: {', '.join(new.left_out)}" if new.left_out else ""
        click.echo(f"{verb} {path}: Contract/{new.key} ({new.spec['transition']['type']} of {new.old.address} "
                   f"at {new.spec['starting_at']}, on RateCard/{to_card}){left}")
    if not dry_run:
        click.echo("Review with `plan`: it creates each new contract with transition.from_contract_id and ends "
                   "the old one at its start.")


COMMANDS = [command]
