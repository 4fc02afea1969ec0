"""Remote applies are journaled and objects can be protected durably.

- `applies`: one row per apply (its serial), with the backend it targeted and whether it finished:
  a remote apply cannot be one transaction, so an apply stopped part-way stays `incomplete`.
- `edits.op_index`: the operation's index in its plan, so a journal row names serial + index (the
  uniqueness key sent with a request derives from lineage, serial and index).
- `objects.protected`: `metadata.protect: true` recorded on apply; it outlives the manifest.
- `state.digest_key`: the store's random key for the keyed digests that stand for secret values in
  plan files and history rows (redaction.keyed_digest); `Store.init` fills it in.
- `objects.moved_from`, `objects.ignore_changes`: a rename's former keys and the ignored spec paths
  last applied (JSON lists; NULL when none).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v6"
down_revision = "v5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("objects", sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("objects", sa.Column("moved_from", sa.Text(), nullable=True))
    op.add_column("objects", sa.Column("ignore_changes", sa.Text(), nullable=True))
    op.add_column("edits", sa.Column("op_index", sa.Integer(), nullable=True))
    op.add_column("state", sa.Column("digest_key", sa.String(), nullable=True))
    op.create_table(
        "applies",
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),  # running | complete | incomplete
        sa.Column("operations", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("serial"),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup taken before the upgrade")
