"""The store's tables (sqlmodel). SQLite by default, PostgreSQL by URL.

JSON bodies are stored as text written by `canonical.dumps`, so numbers stay exact Decimals
on both backends and digests are byte-stable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel


def _ts_column(nullable: bool = True) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class SchemaMigration(SQLModel, table=True):
    __tablename__ = "schema_migrations"

    version: int = Field(primary_key=True)
    name: str
    applied_at: datetime = Field(sa_column=_ts_column(False))


class StateRow(SQLModel, table=True):
    """One row: the store's identity (lineage, fixed at init) and its serial (bumped per apply)."""

    __tablename__ = "state"

    id: int = Field(default=1, primary_key=True)
    lineage: str
    serial: int = 0
    # The key of the digests that stand for secret values in plan files and the history
    # (redaction.keyed_digest): random, made at init, never printed.
    digest_key: str | None = None
    created_at: datetime = Field(sa_column=_ts_column(False))
    updated_at: datetime = Field(sa_column=_ts_column(False))


class ObjectRow(SQLModel, table=True):
    """A billing object: its key, the id the backend gave it, and its current body.

    `body` is the canonical spec the backend holds now; `applied_digest` is the digest of the
    manifest spec last applied, so a body changed out of band shows up as drift.
    """

    __tablename__ = "objects"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_objects_kind_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    key: str
    remote_id: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    applied_digest: str
    archived_at: Optional[datetime] = Field(default=None, sa_column=_ts_column())
    created_at: datetime = Field(sa_column=_ts_column(False))
    updated_at: datetime = Field(sa_column=_ts_column(False))
    # The backend object's revision when `body` was last read from it (the embedded emulator
    # bumps it on every change): a plan re-reads only objects whose revision moved.
    refreshed_revision: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # `metadata.protect: true` as last applied: archiving the object is refused even after its
    # manifest is deleted (revision v6).
    protected: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # `metadata.moved_from` applied: the object's former keys, JSON list, oldest first (history
    # and `show` follow the object to its new key); NULL for an object never renamed (v6).
    moved_from: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    # `metadata.ignore_changes` as last applied, JSON list of spec paths: `applied_digest` and
    # drift are computed without what is under them (ignorepaths.strip); NULL when none (v6).
    ignore_changes: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class SubItemRow(SQLModel, table=True):
    """A keyed item inside an object (commit, credit, override, scheduled charge, subscription,
    recurring commit/credit, billing provider configuration, rate, usage filter period).

    Items are never deleted: removing one sets `archived_at` (or `removed_at` semantics for
    overrides), so billing history stays append-only.
    """

    __tablename__ = "sub_items"
    __table_args__ = (Index("ix_sub_items_owner", "owner_id", "list_name", "key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="objects.id")
    list_name: str
    key: str
    remote_id: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    archived_at: Optional[datetime] = Field(default=None, sa_column=_ts_column())
    created_at: datetime = Field(sa_column=_ts_column(False))


class EditRow(SQLModel, table=True):
    """Edit history: one row per applied operation."""

    __tablename__ = "edits"
    # Made by migration v2 of the release before Alembic; declared so the model says what stores hold.
    __table_args__ = (Index("ix_edits_serial_address", "serial", "address"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    serial: int = Field(index=True)
    applied_at: datetime = Field(sa_column=_ts_column(False))
    op: str
    address: str = Field(index=True)
    action: str
    request: str = Field(sa_column=Column(Text, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    actor: str
    # The operation's index in its plan (revision v6): a journal row is (serial, op_index).
    op_index: Optional[int] = Field(default=None, sa_column=Column(Integer, nullable=True))


class ApplyRow(SQLModel, table=True):
    """One row per apply (revision v6): a remote apply is not one transaction, so an apply that
    stopped part-way stays `incomplete` and its edits say exactly which operations were done."""

    __tablename__ = "applies"

    serial: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    backend: str
    target: str
    status: str  # running | complete | incomplete
    operations: int
    started_at: datetime = Field(sa_column=_ts_column(False))
    finished_at: Optional[datetime] = Field(default=None, sa_column=_ts_column())


class EmulatorObjectRow(SQLModel, table=True):
    """An object of the embedded Metronome emulator, in the shape the API's get endpoints return
    (`body`, canonical JSON). Only `emulator.engine` changes these, through `store.emulator_repo`.

    `revision` comes from one counter for the whole emulator (`emulator_state`), bumped on every
    change to the object, by an apply or out of band: refresh re-reads objects whose revision moved.
    """

    __tablename__ = "emulator_objects"

    id: str = Field(primary_key=True)
    type: str = Field(index=True)  # billable_metric | product | rate_card | customer | contract | credit_type
    revision: int = Field(sa_column=Column(BigInteger, nullable=False))
    archived: bool = False
    body: str = Field(sa_column=Column(Text, nullable=False))


class EmulatorStateRow(SQLModel, table=True):
    """One row: the emulator's revision counter."""

    __tablename__ = "emulator_state"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(sa_column=Column(BigInteger, nullable=False))


class InvoiceRow(SQLModel, table=True):
    """A computed invoice (rating output), stored as its JSON document."""

    __tablename__ = "invoices"

    id: Optional[int] = Field(default=None, primary_key=True)
    customer: str = Field(index=True)
    contract: str
    type: str
    start_timestamp: datetime = Field(sa_column=_ts_column(False))
    end_timestamp: datetime = Field(sa_column=_ts_column(False))
    total: str
    document: str = Field(sa_column=Column(Text, nullable=False))
    computed_at: datetime = Field(sa_column=_ts_column(False))
