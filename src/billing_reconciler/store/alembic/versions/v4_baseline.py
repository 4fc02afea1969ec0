"""Baseline: the schema of the last release before Alembic (schema v4), for a new store.

Generated once by autogenerate from that release's tables (commit 629dffb) plus the index its
migration v2 made, then frozen: never edit it, add a revision. A store that release wrote already
has exactly these tables; `init` stamps it at this revision instead of running it
(store.migrations). tests/store/test_alembic.py checks the revisions against tables.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v4"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_migrations",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lineage", sa.String(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("applied_digest", sa.String(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "key", name="uq_objects_kind_key"),
    )
    op.create_index("ix_objects_kind", "objects", ["kind"], unique=False)
    op.create_table(
        "sub_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["objects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sub_items_owner", "sub_items", ["owner_id", "list_name", "key"], unique=False)
    op.create_table(
        "edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("op", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_edits_serial", "edits", ["serial"], unique=False)
    op.create_index("ix_edits_address", "edits", ["address"], unique=False)
    op.create_index("ix_edits_serial_address", "edits", ["serial", "address"], unique=False)
    create_usage_events_table()
    create_usage_rollup_tables()
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer", sa.String(), nullable=False),
        sa.Column("contract", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("start_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.String(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoices_customer", "invoices", ["customer"], unique=False)


def create_usage_events_table() -> None:
    """The usage events table (schema v4 to v6; v7 drops it): also what tests rebuild a v6 store with."""
    op.create_table(
        "usage_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(), nullable=False),
        sa.Column("customer_ref", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ts_epoch", sa.BigInteger(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transaction_id"),
    )


def create_usage_rollup_tables() -> None:
    """The usage rollup's tables: also what the pre-Alembic migration v4 adds to an older store."""
    op.create_table(
        "usage_shapes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("shape", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "usage_rollup",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("customer_ref", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("shape_id", sa.Integer(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("min_ts", sa.BigInteger(), nullable=False),
        sa.Column("max_ts", sa.BigInteger(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day", "customer_ref", "event_type", "shape_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "usage_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("max_event_id", sa.BigInteger(), nullable=False),
        sa.Column("excluded", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never downgraded: restore a backup taken before the upgrade")
