"""Alembic's environment (env.py) and revisions (versions/) for the store's schema.

Run by `store.migrations.migrate` (so by `billing-reconciler init`), configured in code: there is
no alembic.ini, and the migrations run in the connection and transaction `init` holds under the
store lock. Revision ids are `v<N>`, N the schema number (store.version); `v4` is the baseline,
the schema of the last release before Alembic, written out once and frozen.

A new revision: bump `store.version.LATEST_VERSION`, change `store/tables.py`, and write
`versions/v<N>_<what>.py` with `revision = "v<N>"`, `down_revision = "v<N-1>"`. To draft its
operations, autogenerate against a store at the current head:

    from alembic import command
    config = migrations.alembic_config(conn, autogenerate=True)  # conn: a store at head
    command.revision(config, "what changed", autogenerate=True, rev_id="v8")

then read and edit what it wrote (data moves are yours to add). tests/store/test_alembic.py checks
that the revisions build exactly what tables.py declares.
"""
