"""The embedded backend becomes a Metronome emulator with its own tables (`emulator_objects`,
`emulator_state`); objects remember the emulator revision they were last read at
(`objects.refreshed_revision`). A store written before is seeded: every object it holds is rebuilt
in the emulator under the same ids, so the next plan is empty (emulator.seed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v5"
down_revision = "v4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("objects", sa.Column("refreshed_revision", sa.BigInteger(), nullable=True))
    op.create_table(
        "emulator_objects",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_emulator_objects_type", "emulator_objects", ["type"], unique=False)
    op.create_table(
        "emulator_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Today's emulator code, not a frozen copy: the seed has to build what this release reads.
    from billing_reconciler.emulator.seed import seed_from_store

    seed_from_store(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup taken before the upgrade")
