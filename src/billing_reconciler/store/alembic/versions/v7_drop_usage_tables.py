"""The store keeps configuration only: the usage tables (`usage_events`, `usage_shapes`,
`usage_rollup`, `usage_rollup_state`) are dropped; events live in the DuckDB events file
(`events.engine`).

Events still in `usage_events` must be in the events file first: `init` moves them
(`events.move.move_before_upgrade`, in the same transaction, before the migrations) and then says
so with `migrate(..., events_moved=True)`. Without that, this revision refuses a store whose
`usage_events` holds rows (StoreError; the transaction rolls back, nothing changes): dropping them
would lose events. An empty table is dropped as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v7"
down_revision = "v6"
branch_labels = None
depends_on = None

# Children first (none refers to another; the order is only tidy). Their indexes and unique
# constraints go with them; ix_usage_events_customer_ref was dropped by the pre-Alembic step v4.
RETIRED = ("usage_rollup", "usage_rollup_state", "usage_shapes", "usage_events")


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    if "usage_events" in present:
        events = bind.execute(sa.text("SELECT count(*) FROM usage_events")).scalar_one()
        moved = op.get_context().config.attributes.get("events_moved", False)
        if events and not moved:
            from billing_reconciler.store.store import StoreError

            raise StoreError(
                f"the store's usage_events table holds {events} event(s) that schema v7 no longer keeps, and they "
                "were not moved into the events database first; run `billing-reconciler init`, which moves them "
                "before it upgrades the store. Nothing was changed")
    op.execute("DROP INDEX IF EXISTS ix_usage_events_customer_ref")
    for table in RETIRED:
        if table in present:
            op.drop_table(table)


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup taken before the upgrade")
