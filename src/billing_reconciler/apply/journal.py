"""A remote apply, journaled: each operation is recorded in the store in its own commit.

A remote API cannot take part in the store's transaction, so an apply against it cannot be
all-or-nothing. Instead:

1. One commit starts the apply: the plan's serial is checked, the serial moves (once per apply)
   and an `applies` row says `running`.
2. For each operation: a journal row (`edits`, serial + op_index) is committed *before* the
   request is sent, with the outcome `sent`; then the request; then, in one commit, the ids it
   made, the touched object as read back from the API, and the row's outcome (the response).
   A refusal settles the row as `failed`; no answer (timeout, lost connection, 5xx) as
   `unknown`; a killed process leaves it `sent`.
3. The last commit marks the apply `complete`; a failure marks it `incomplete` and raises
   RemoteApplyError naming what was done, what failed and why, and what remains.

Requests to endpoints that take `uniqueness_key` carry one derived from lineage + serial +
operation index, so a re-sent request is refused with 409 instead of applied twice; a 409 is
"already done", resolved by a read. Rows left `sent`/`unknown` are resolved by `pending.resolve_pending`
(run before each refresh): a create is matched in the account (customers by ingest alias, contracts
by uniqueness key, the rest by name), and items an edit added are matched to the keys it was adding.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import text

from .. import canonical
from ..plan.operations import OBJECT_CREATES, PLACEHOLDER, Operation, Request
from ..plan.plan import Plan
from ..plan.planfile import check_fresh
from ..redaction import NO_MARKS, AccountSecrets
from ..specform import KEYED_LISTS
from ..store.store import NotInitialized, Store
from ..store.writer import StoreWriter
from ..timeutil import utc_now
from .backends import BackendError

UNIQUE_OPS = frozenset({"create_contract", "edit_contract", "create_customer_commit", "create_customer_credit"})
PG_APPLY_LOCK_ID = 0x6269_6C6C_7265_6D74  # "billremt": held for a whole remote apply
SENT, UNKNOWN, FAILED, NOT_APPLIED = "sent", "unknown", "failed", "not applied"


def uniqueness_key(lineage: str, serial: int, index: int) -> str:
    """The same for the same operation of the same apply, different for every other."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"billing-reconciler/{lineage}/{serial}/{index}"))


class RemoteApplyError(Exception):
    """An apply that stopped part-way: what was done, what failed and why, what remains."""

    def __init__(self, serial: int, done: list[Operation], index: int, op: Operation, cause: BaseException,
                 remaining: list[Operation], unknown: bool):
        self.serial, self.done, self.index, self.op, self.cause = serial, done, index, op, cause
        self.remaining, self.unknown = remaining, unknown
        lines = [f"apply {serial} stopped at operation {index + 1} of {len(done) + 1 + len(remaining)} "
                 f"({op.op} {op.address}): {cause}"]
        if unknown:
            lines.append("  Its outcome is unknown (it may have been applied); the next plan reads the account "
                         "and matches it, so it is not made twice.")
        lines.append(f"  Done ({len(done)}, recorded in the store): "
                     + (", ".join(f"{o.op} {o.address}" for o in done) or "nothing"))
        lines.append(f"  Remaining ({len(remaining)}, not sent): "
                     + (", ".join(f"{o.op} {o.address}" for o in remaining) or "nothing"))
        lines.append("  Run `plan` (or `apply`) again: it proposes only what remains.")
        super().__init__("\n".join(lines))


class ExistsInAccount(BackendError):
    """A create would make a second object with the alias or name of one the account already holds."""


def _adds(op: Operation) -> list[list[str]]:
    return [[i.list_name, i.key] for i in op.items if i.effect == "add" and i.list_name in KEYED_LISTS]


@contextlib.contextmanager
def remote_apply_lock(store: Store, timeout: float, *, wait: bool = True) -> Iterator[bool]:
    """Held for the whole of a remote apply (its store transactions come and go): a file lock
    beside a SQLite store, a session advisory lock on PostgreSQL. Both end with the process, so a
    killed apply holds nothing. Yields False when `wait` is off and another apply holds it."""
    import time

    from ..store.store import LockTimeout, default_sqlite_path

    deadline = time.monotonic() + timeout
    if store.is_sqlite:
        import fcntl

        path = default_sqlite_path(store.url)
        if path is None:  # in memory: one process
            yield True
            return
        with open(path.with_name(path.name + ".apply-lock"), "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        yield False
                        return
                    if time.monotonic() > deadline:
                        raise LockTimeout(f"could not take the store lock within {timeout:g}s: another apply "
                                          "is running against the API; wait for it, or raise --lock-timeout") from None
                    time.sleep(0.1)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with store.engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": PG_APPLY_LOCK_ID}).scalar():
            conn.commit()
            if not wait:
                yield False
                return
            if time.monotonic() > deadline:
                raise LockTimeout(f"could not take the store lock within {timeout:g}s: another apply is running "
                                  "against the API; wait for it, or raise --lock-timeout")
            time.sleep(0.1)
        conn.commit()
        try:
            yield True
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": PG_APPLY_LOCK_ID})
            conn.commit()


def apply_journaled(store: Store, plan: Plan, backend, *, lock_timeout: float = 30.0, actor: str = "",
                    progress: Callable[[int, Operation], None] | None = None, secrets: AccountSecrets = NO_MARKS):
    """Run the plan's operations, each journaled in its own commits. Operations of different
    customers (a customer and its contracts are one lane) run concurrently, at most
    `backend.parallelism` at a time; any other operation (the catalog, anything whose customer is
    not known) waits for all before it and all after it wait for it, so plan order is kept
    wherever it matters. The first failure stops new operations; those in flight finish."""
    if plan.errored:
        raise ValueError("this plan has errors and cannot be applied")
    if store.state()[0] is None:
        raise NotInitialized("the store is not initialised; run `billing-reconciler init` first")
    with remote_apply_lock(store, lock_timeout):
        return _apply_locked(store, plan, backend, lock_timeout=lock_timeout, actor=actor, progress=progress,
                             secrets=secrets)


def _apply_locked(store: Store, plan: Plan, backend, *, lock_timeout: float, actor: str,
                  progress: Callable[[int, Operation], None] | None, secrets: AccountSecrets):
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from .applier import ApplyResult, make_moves, make_records

    with store.reading() as conn:
        shared = backend.session(conn).contract_customer  # every contract's customer, read once
    check_not_in_account(store, plan, backend.session(None))
    with store.transaction(lock_timeout=lock_timeout, holder=actor) as conn:
        lineage, current = store.locked_state(conn)
        check_fresh(plan, lineage, current)
        serial = current + 1
        writer = StoreWriter(conn, utc_now(), secrets)  # history rows hide what the manifests mark
        writer.set_serial(serial)
        writer.start_apply(serial, backend.name, backend.target, len(plan.operations))
        make_moves(plan, writer, serial, actor)  # renames are store-only: committed with the start
        writer.flush()
    run = _Run(store, backend, writer, lineage, serial, actor, lock_timeout, shared)
    ops = plan.operations
    deps = _dependencies(ops, writer)
    result = ApplyResult(serial)
    finished: dict[int, dict[str, Any]] = {}
    failures: list[tuple[int, BaseException, bool]] = []
    waiting = list(range(len(ops)))
    workers = max(1, getattr(backend, "parallelism", 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        running: dict = {}
        while waiting or running:
            if not failures:
                for index in [i for i in waiting if deps[i] <= finished.keys()]:
                    if len(running) >= workers:
                        break
                    waiting.remove(index)
                    running[pool.submit(run.one, index, ops[index])] = index
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                error = future.exception()
                if error is None:
                    finished[index] = future.result()
                    if progress is not None:
                        progress(index, ops[index])
                else:
                    failures.append((index, error.__cause__ or error, bool(getattr(error, "unknown", False))))
    for index in sorted(finished):
        result.applied.append((ops[index], finished[index]))
    with run.lock, store.transaction(lock_timeout=lock_timeout, holder=actor) as conn:
        writer.rebind(conn, utc_now())
        if not failures:  # lifecycle records (store only) once every operation is done
            session = backend.session(conn)
            session.contract_customer = run.contract_customer
            make_records(plan, session, writer, serial, actor)
            writer.flush()
        writer.finish_apply(serial, "incomplete" if failures else "complete")
    if failures:
        index, cause, unknown = min(failures, key=lambda f: f[0])
        remaining = [ops[i] for i in range(len(ops)) if i not in finished and i != index]
        raise RemoteApplyError(serial, [ops[i] for i in sorted(finished)], index, ops[index], cause, remaining,
                               unknown) from cause
    return result


class _Failed(Exception):
    """An operation's failure, once recorded; `unknown`: it was sent and may have been applied."""

    def __init__(self, unknown: bool):
        super().__init__("operation failed")
        self.unknown = unknown


class _Run:
    """One journaled apply: the store writes of its operations, one at a time under `lock`."""

    def __init__(self, store: Store, backend, writer: StoreWriter, lineage: str, serial: int, actor: str,
                 lock_timeout: float, contract_customer: dict[str, str]):
        import threading

        self.store, self.backend, self.writer = store, backend, writer
        self.lineage, self.serial, self.actor, self.lock_timeout = lineage, serial, actor, lock_timeout
        self.contract_customer = contract_customer
        self.ids: dict[str, str] = {}
        self.started = utc_now()  # apply-time values (${apply.next_hour}) are the same for the whole apply
        self.lock = threading.Lock()

    def _commit(self):
        return self.store.transaction(lock_timeout=self.lock_timeout, holder=self.actor)

    def one(self, index: int, op: Operation) -> dict[str, Any]:
        from .applier import _added_items, _map, _remote_id, _store_touched, resolve_text

        writer = self.writer
        session = self.backend.session(None)
        session.contract_customer = self.contract_customer
        sent = False
        try:
            request, body_text = resolve_text(op.request, self.ids, self.started)
            if op.op in UNIQUE_OPS:
                request = Request(request.method, request.path, {
                    **request.body, "uniqueness_key": uniqueness_key(self.lineage, self.serial, index)})
                body_text = canonical.dumps(request.body)
            with self.lock, self._commit() as conn:
                writer.rebind(conn, utc_now())
                writer.record(self.serial, op.op, op.address, op.action.value, request.method, request.path,
                              body_text, {"outcome": SENT, "digest": op.spec_digest, "adds": _adds(op)},
                              self.actor, index)
                writer.flush()
            sent = True
            response = _send(session, op, request)
            remote_id = _remote_id(op, response, writer)
            session.get(op.kind, remote_id)  # read back now, outside the lock (kept by the session)
            with self.lock, self._commit() as conn:
                writer.rebind(conn, utc_now())
                session.conn = conn
                if op.op in OBJECT_CREATES:
                    self.ids[op.address] = remote_id
                added = _added_items(op, session, remote_id, writer)
                for item_ref, item_id in added.items():
                    self.ids[f"{op.address}.{item_ref}"] = item_id
                touched: dict = {}
                _map(writer, touched, op, remote_id, added, index)
                _store_touched(writer, touched, session, {})
                writer.flush()
                writer.settle(self.serial, index, response)
            return response
        except Exception as exc:  # noqa: BLE001 - recorded, then reported as the apply's failure
            from .backends.metronome import OutcomeUnknown

            refused = isinstance(exc, BackendError) and not isinstance(exc, OutcomeUnknown)
            unknown = sent and not refused
            with self.lock, self._commit() as conn:
                writer.rebind(conn, utc_now())
                writer.items.take(), writer.objects.take(), writer.edits.take()  # a failed commit's queue
                if sent:
                    writer.settle(self.serial, index, {"outcome": UNKNOWN if unknown else FAILED,
                                                       "error": str(exc)[:1000], "digest": op.spec_digest,
                                                       "adds": _adds(op)})
            raise _Failed(unknown) from exc


def _lane(op: Operation, writer: StoreWriter) -> str | None:
    """The customer an operation belongs to (None: it may touch what any other touches)."""
    if op.kind == "Customer":
        return op.key
    if op.kind != "Contract":
        return None
    customer_id = str((op.request.body or {}).get("customer_id") or "")
    found = PLACEHOLDER.fullmatch(customer_id)
    if found and found.group(1).startswith("Customer/") and not found.group(2):
        return found.group(1).split("/", 1)[1]
    return writer.object_keys.get(customer_id)


def _dependencies(ops, writer: StoreWriter) -> list[set[int]]:
    """For each operation, the earlier ones it waits for: the last of its lane and the last
    barrier; a barrier waits for every operation since the previous one."""
    deps: list[set[int]] = []
    last_in_lane: dict[str, int] = {}
    since_barrier: list[int] = []
    barrier: int | None = None
    for index, op in enumerate(ops):
        lane = _lane(op, writer)
        before = {barrier} if barrier is not None else set()
        if lane is None:
            deps.append(before | set(since_barrier))
            barrier, since_barrier, last_in_lane = index, [], {}
        else:
            if lane in last_in_lane:
                before.add(last_in_lane[lane])
            deps.append(before)
            last_in_lane[lane] = index
            since_barrier.append(index)
    return deps


def _send(session, op: Operation, request: Request) -> dict[str, Any]:
    """The response; a 409 on the uniqueness key means an earlier sending was applied: for a
    contract create, the contract is found by its key."""
    from .backends.metronome import AlreadyDone

    try:
        return session.execute(request)
    except AlreadyDone:
        if op.op != "create_contract":
            return {"data": {}, "resolved": "409: already applied"}
        key = request.body["uniqueness_key"]
        for contract in session.contracts_of(request.body["customer_id"]):
            if contract.get("uniqueness_key") == key:
                return {"data": {"id": contract["id"]}, "resolved": "409: already applied"}
        raise


# --- before an apply: the account holds nothing the plan would make a second of -------------------

def _identity(kind: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """What names an object in the account: a customer's ingest aliases (or its name), a
    contract's uniqueness key, the name of the rest."""
    if kind == "Customer":
        aliases = [("ingest alias", a) for a in body.get("ingest_aliases") or []]
        return aliases or ([("name", body["name"])] if body.get("name") else [])
    if kind == "Contract":
        return [("uniqueness key", body["uniqueness_key"])] if body.get("uniqueness_key") else []
    return [("name", body["name"])] if body.get("name") else []


def _candidates(kind: str, body: dict[str, Any], objects: list[dict[str, Any]], mapped: set[str]) -> list[dict]:
    wanted = set(_identity(kind, body))
    if not wanted:
        return []
    out = []
    for obj in objects:
        if obj.get("archived_at") is not None or obj["id"] in mapped:
            continue
        if wanted & set(_identity(kind, obj)):
            out.append(obj)
    return out


def _mapped_ids(conn) -> set[str]:
    return {row[0] for row in conn.execute(text("SELECT remote_id FROM objects WHERE archived_at IS NULL"))}


def check_not_in_account(store: Store, plan: Plan, session) -> None:
    creates = [op for op in plan.operations if op.op in OBJECT_CREATES and op.kind != "Contract"]
    if not creates:
        return
    with store.reading() as conn:
        mapped = _mapped_ids(conn)
    listed: dict[str, list[dict[str, Any]]] = {}
    problems = []
    for op in creates:
        if op.kind not in listed:
            listed[op.kind] = session.identities(op.kind)
        for obj in _candidates(op.kind, op.request.body, listed[op.kind], mapped):
            what, value = sorted(set(_identity(op.kind, op.request.body)) & set(_identity(op.kind, obj)))[0]
            problems.append(f"{op.address}: exists: the account already holds {op.kind} {obj['id']} with {what} "
                            f"'{value}'; import it (`billing-reconciler --backend metronome import`) instead of "
                            "creating a second one")
    if problems:
        raise ExistsInAccount("\n".join(problems))
