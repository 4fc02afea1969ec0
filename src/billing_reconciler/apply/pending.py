"""After a failed or killed remote apply: settle the journal rows whose outcome is unknown.

A row left `sent` (killed) or `unknown` (no answer) is resolved by reading the account before the
next refresh: a create is matched in the account (customers by ingest alias, contracts by
uniqueness key, the rest by name) and recorded as made, or found not made; items an edit added are
matched to the keys it was adding. More than one candidate stops with the list. Rows of an apply
still running (it holds the remote apply lock) are left alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from .. import canonical
from ..plan.operations import OBJECT_CREATES
from ..plan.readers import Keys, read
from ..specform import spec_text
from ..store.store import Store
from ..store.writer import StoreWriter
from ..timeutil import utc_now
from .backends import BackendError
from .journal import NOT_APPLIED, SENT, UNKNOWN, _candidates, _mapped_ids, remote_apply_lock


def pending_rows(conn) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT e.serial, e.op_index, e.op, e.address, e.request, e.response FROM edits e "
        "JOIN applies a ON a.serial = e.serial WHERE a.status <> 'complete' AND e.op_index IS NOT NULL "
        "ORDER BY e.serial, e.op_index")).all()
    out = []
    for serial, index, op, address, request, response in rows:
        outcome = canonical.loads(response)
        if not isinstance(outcome, dict):
            continue
        # A create found "not applied" stays in question while its key maps nothing: a slow
        # server may still carry it out after the client gave up.
        if outcome.get("outcome") in (SENT, UNKNOWN) or (outcome.get("outcome") == NOT_APPLIED and op in OBJECT_CREATES):
            out.append({"serial": serial, "index": index, "op": op, "address": address,
                        "request": canonical.loads(request), "outcome": outcome})
    return out


class AmbiguousMatch(BackendError):
    """More than one object in the account could be the one a lost create made."""


def resolve_pending(store: Store, backend, *, lock_timeout: float = 30.0) -> list[str]:
    """Settle journal rows whose outcome is unknown, by reading the account; returns one line per
    row settled. A matched create is recorded as made (key <-> id, body as read); items an edit
    added get the keys it was adding. Moves the serial if anything was recorded (a plan made
    before would propose it again)."""
    if store.state()[0] is None:
        return []
    with store.reading() as conn:
        if not conn.execute(text("SELECT 1 FROM applies WHERE status <> 'complete'")).first():
            return []
    with remote_apply_lock(store, lock_timeout, wait=False) as free:
        if not free:  # an apply is running: its rows are in flight, not in question
            return []
        return _resolve(store, backend, lock_timeout)


def _resolve(store: Store, backend, lock_timeout: float) -> list[str]:
    with store.reading() as conn:
        pending = pending_rows(conn)
        running = conn.execute(text("SELECT 1 FROM applies WHERE status = 'running'")).first()
    if not pending and not running:
        return []
    session = backend.session(None)
    notes: list[str] = []
    with store.transaction(lock_timeout=lock_timeout, holder="refresh") as conn:
        session.conn = conn
        writer = StoreWriter(conn, utc_now())
        mapped = _mapped_ids(conn)
        recorded = False
        listed: dict[str, list[dict[str, Any]]] = {}
        for row in pending:
            kind, key = row["address"].split("/", 1)
            body = row["request"]["body"]
            outcome = row["outcome"]
            live = (kind, key) in writer.remote_ids and writer.remote_ids[(kind, key)] in mapped
            if row["op"] in OBJECT_CREATES and not live:
                if kind not in listed:
                    listed[kind] = session.list(kind)
                found = _candidates(kind, body, listed[kind], mapped)
                if len(found) > 1:
                    raise AmbiguousMatch(
                        f"{row['address']}: apply {row['serial']} sent its create but got no answer, and the account "
                        f"holds {len(found)} objects it could have made: " + ", ".join(o["id"] for o in found)
                        + ". Archive the extra ones in the account (or import them), then plan again.")
                if not found:
                    if outcome.get("outcome") == NOT_APPLIED:
                        continue  # as found before
                    settled = {**outcome, "outcome": NOT_APPLIED, "resolved": "no such object in the account"}
                    notes.append(f"{row['address']}: the create of apply {row['serial']} was not applied")
                else:
                    api = found[0]
                    writer.map_object(kind, key, api["id"])
                    mapped.add(api["id"])
                    _map_fresh_items(writer, kind, key, api, outcome.get("adds") or [], row["index"])
                    keys = Keys(writer.object_keys, writer.item_keys)
                    writer.put_object(kind, key, api["id"], spec_text(read(kind, api, keys)), outcome.get("digest"),
                                      None, created=True, archived=False, index=row["index"])
                    settled = {**outcome, "outcome": "applied", "data": {"id": api["id"]},
                               "resolved": "found in the account by refresh"}
                    notes.append(f"{row['address']}: the create of apply {row['serial']} was applied: {api['id']}")
                    recorded = True
            elif outcome.get("outcome") == NOT_APPLIED:
                continue  # made since by a later apply
            elif live and outcome.get("adds"):
                api = session.get(kind, writer.remote_ids[(kind, key)]) or {}
                if _map_fresh_items(writer, kind, key, api, outcome["adds"], row["index"]):
                    settled = {**outcome, "outcome": "applied", "resolved": "its items found in the account by refresh"}
                    notes.append(f"{row['address']}: {row['op']} of apply {row['serial']} was applied")
                    recorded = True
                else:
                    settled = {**outcome, "outcome": "not applied", "resolved": "its items are not in the account"}
                    notes.append(f"{row['address']}: {row['op']} of apply {row['serial']} was not applied")
            else:
                settled = {**outcome, "outcome": "resolved by refresh",
                           "resolved": "the object is read again; the next plan proposes what remains"}
            writer.settle(row["serial"], row["index"], settled)
        writer.flush()
        conn.execute(text("UPDATE applies SET status = 'incomplete' WHERE status = 'running'"))
        if recorded:
            writer.set_serial(store.locked_state(conn)[1] + 1)
    return notes


def _map_fresh_items(writer: StoreWriter, kind: str, key: str, api: dict[str, Any], adds: list[list[str]],
                     index: int) -> bool:
    """Items of `api` no key maps, in order, get the keys the operation was adding, list by list,
    when their numbers agree. False if none of the lists has its new items."""
    by_list: dict[str, list[str]] = {}
    for list_name, item_key in adds:
        by_list.setdefault(list_name, []).append(item_key)
    matched = False
    for list_name, keys in by_list.items():
        fresh = [item["id"] for item in api.get(list_name) or []
                 if item.get("archived_at") is None and item["id"] not in writer.item_keys]
        if len(fresh) != len(keys):
            continue
        for item_key, item_id in zip(keys, fresh):
            writer.archive_item(kind, key, list_name, item_key, index)
            writer.add_item(kind, key, list_name, item_key, item_id, index)
        matched = True
    return matched
