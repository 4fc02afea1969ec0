"""The library entry points the CLI wires together: load, plan, apply.

Usable from Python: `plan_from_tree(store, "manifests")`, `apply_plan(...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .manifests import ManifestErrors, load_manifests
from .manifests.cache import ManifestCache
from .manifests.loader import LoadResult
from .plan.plan import Plan
from .plan.planner import build_plan
from .redaction import NO_MARKS, AccountSecrets
from .store.store import Snapshot, Store

if TYPE_CHECKING:
    from .apply.backends import Backend
    from .rating.state import BillingState


def default_backend() -> Backend:
    from .apply.backends.embedded import EmbeddedBackend

    return EmbeddedBackend()


def current_state(store: Store, backend: Backend | None = None, *, refresh: bool = True) -> Snapshot:
    """The store's snapshot, refreshed from the backend unless refresh is False (--no-refresh)."""
    if refresh and backend is not None and getattr(backend, "remote", False):
        from .apply.pending import resolve_pending

        resolve_pending(store, backend)  # what a failed or killed apply sent, matched in the account
    snapshot = store.snapshot()
    if snapshot.initialized:
        from .plan.credit_types import read_credit_types

        backend = backend or default_backend()
        with store.reading() as conn:  # a data source: read even with --no-refresh
            snapshot.credit_types = read_credit_types(backend.session(conn))
    if refresh and snapshot.initialized:
        from .plan.refresh import refresh as refresh_from

        refresh_from(store, snapshot, backend)
    return snapshot


def load_tree(manifests_dir: str | Path, *, cache: ManifestCache | None = None) -> LoadResult:
    """Every manifest under `manifests_dir`; ManifestErrors with every problem if any."""
    result = load_manifests(manifests_dir, cache=cache)
    if result.problems:
        raise ManifestErrors(result.problems)
    return result


def plan_loaded(store: Store, loaded: LoadResult, *, targets: tuple[str, ...] = (), prune: bool = False,
                replace: tuple[str, ...] = (), backend: Backend | None = None, refresh: bool = True) -> Plan:
    """The plan of loaded manifests against the store (refreshed from the backend unless refresh is
    False), `{from_env: NAME}` values read from the environment (ManifestErrors if one is unset)."""
    from .manifests.from_env import resolve

    manifests = resolve(loaded.manifests)
    snapshot = current_state(store, backend, refresh=refresh)
    plan = build_plan(manifests, snapshot, manifests_digest=loaded.digest, targets=targets,
                      prune=prune, replace=replace)
    if backend is not None and getattr(backend, "remote", False):  # the plan names the API it targets
        plan.extras["backend"] = {"name": backend.name, "api": backend.target}
    return plan


def plan_from_tree(store: Store, manifests_dir: str | Path, *, cache: ManifestCache | None = None,
                   targets: tuple[str, ...] = (), prune: bool = False, replace: tuple[str, ...] = (),
                   backend: Backend | None = None, refresh: bool = True) -> Plan:
    return plan_loaded(store, load_tree(manifests_dir, cache=cache), targets=targets, prune=prune,
                       replace=replace, backend=backend, refresh=refresh)


class PlanMismatch(Exception):
    """`apply FILE`: the plan made again now is not the plan in the file."""

    def __init__(self, differences: list[str]):
        super().__init__("; ".join(differences))
        self.differences = differences


def rederive_plan(store: Store, manifests_dir: str | Path, given: dict, *, cache: ManifestCache | None = None,
                  backend: Backend | None = None) -> tuple[Plan, AccountSecrets]:
    """`apply FILE`: the plan in the file (`given`, its JSON document), made again from the
    manifests and the environment against the store, with the real secret values; and what the
    manifests mark sensitive. The file holds no secret (planfile), and anything in it may have
    been edited, so it is never sent as written: the plan made now is, if written the same way
    it is the file's, field for field (StalePlan when the store moved since, PlanMismatch when
    anything else differs: an amount, a digest, a serial, a secret's value, the manifests)."""
    from .plan.operations import Action
    from .plan.planfile import check_fresh, plan_differences, plan_file_json, plan_from_json

    saved = plan_from_json(given)
    lineage, serial = store.state()
    check_fresh(saved, lineage, serial)
    loaded = load_tree(manifests_dir, cache=cache)
    replace = tuple(sorted({op.address for op in saved.operations if op.action == Action.REPLACE}))
    plan = plan_loaded(store, loaded, targets=saved.targets, prune=saved.prune, replace=replace, backend=backend)
    secrets = AccountSecrets.from_manifests(loaded.manifests)
    differences = plan_differences(given, plan_file_json(plan, secrets, store.digest_key()))
    if differences:
        raise PlanMismatch(differences)
    return plan, secrets


def account_secrets(manifests_dir: str | Path, *, cache: ManifestCache | None = None) -> AccountSecrets:
    """What the manifests mark sensitive (metadata.sensitive), for commands that show the store
    (show, history, apply PLANFILE). Best effort: documents that do not validate mark nothing,
    and fields named like credentials are hidden regardless."""
    if not Path(manifests_dir).is_dir():
        return NO_MARKS
    return AccountSecrets.from_manifests(load_manifests(manifests_dir, cache=cache).manifests)


def state_from_session(session, object_keys: dict[str, str], item_keys: dict[str, str]) -> BillingState:
    """The billing state as a backend session reports it: every live object the store maps to a
    key, read into specs, with each contract's usage-filter history. The one way rating sees
    objects: applied (`billing_state`), after a plan (`plan_state`), or of manifests alone."""
    from .plan.readers import Keys, credit_type_names, read, usage_filter_periods
    from .rating.state import KINDS, BillingState

    keys = Keys(object_keys, item_keys, credit_type_names(session))
    specs: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
    history: dict[str, list[dict]] = {}
    remote_ids: dict[str, str] = {}
    for kind in KINDS:
        for api in session.list(kind):
            key = object_keys.get(api["id"])
            if key is None or api.get("archived_at") is not None:
                continue
            specs[kind][key] = read(kind, api, keys)
            if kind == "Contract":
                history[key] = usage_filter_periods(api)
            elif kind == "Customer":
                remote_ids[api["id"]] = key
    return BillingState.from_specs(specs, history, remote_ids)


def billing_state(store: Store, backend: Backend | None = None) -> BillingState:
    """What the rating engine rates: the applied objects as the backend reports them now."""
    snapshot = store.snapshot()
    if not snapshot.initialized:
        from .rating.state import BillingState

        return BillingState()
    snapshot.load_items()
    object_keys = {o.remote_id: o.key for o in snapshot.objects.values()}
    item_keys = {i.remote_id: i.key for o in snapshot.objects.values() for i in o.items if not i.archived}
    with store.reading() as conn:
        return state_from_session((backend or default_backend()).session(conn), object_keys, item_keys)


def plan_state(store: Store, plan: Plan, backend: Backend | None = None) -> BillingState:
    """What the rating engine would rate after the plan: its requests executed on the embedded
    emulator in a transaction that is rolled back (what-if)."""
    from .apply.applier import what_if

    return what_if(store, plan, backend or default_backend(),
                   lambda session, writer: state_from_session(session, writer.object_keys, writer.item_keys))


def manifests_state(manifests: list) -> BillingState:
    """The billing state the manifests alone make: applied to a throw-away emulator and read back,
    so they are rated through the same requests and readers as applied objects."""
    return revision_states([], manifests)[1]


def revision_states(base: list, manifests: list) -> tuple[BillingState, BillingState]:
    """(before, after) for a change between two sets of manifests: `base` applied to a throw-away
    emulator, then the plan to `manifests` applied on top, each state read back. Applying on top
    (not side by side) keeps what only history holds, such as a usage filter's earlier periods."""
    import tempfile

    from .apply.applier import apply_plan
    from .manifests.from_env import as_text

    base, manifests = as_text(base), as_text(manifests)  # rated without reading any secret
    backend = default_backend()
    with tempfile.TemporaryDirectory(prefix="billing-reconciler-") as directory:
        store = Store(f"sqlite:///{directory}/throwaway.db")
        try:
            store.init()
            states = []
            for wanted in (base, manifests):
                plan = build_plan(wanted, current_state(store, backend))
                if plan.errored:
                    raise ManifestErrors(list(plan.errors))
                if plan.operations:
                    apply_plan(store, plan, backend, actor="throw-away")
                states.append(billing_state(store, backend))
            return states[0], states[1]
        finally:
            store.close()


class ArchivedObject(KeyError):
    """`show ADDRESS` of an object that was archived (shown with `archived=True`)."""


def show_objects(store: Store, address: str | None = None, backend: Backend | None = None, *,
                 archived: bool = False) -> list[dict]:
    """Each managed object as the backend holds it: its address, id, the spec the reader makes of
    it, the API object itself (ids and all, archived items included) and the store's key <-> id
    mapping of its items. With `archived`, the archived objects too (as last applied; `archived`
    says which). Raises KeyError for an address the store does not know, ArchivedObject for an
    archived one asked for without `archived`."""
    snapshot = current_state(store, backend)
    objects = dict(snapshot.objects)
    gone: dict = {}
    if archived or (address is not None and address not in objects):  # a second read only when needed
        gone = {a: o for a, o in store.snapshot(include_archived=True).objects.items()
                if o.archived and a not in objects}
    if archived:
        objects.update(gone)
    if address is not None:
        if address not in objects:
            raise ArchivedObject(address) if address in gone else KeyError(address)
        objects = {address: objects[address]}
    backend = backend or default_backend()
    out = []
    with store.reading() as conn:
        session = backend.session(conn)
        for obj in sorted(objects.values(), key=lambda o: o.address):
            out.append({"address": obj.address, "id": obj.remote_id, "archived": obj.archived,
                        "drifted": obj.drifted and not obj.archived,
                        # Lifecycle metadata as last applied: metadata.protect, former keys, ignored paths.
                        "protected": obj.protected, "moved_from": list(obj.moved_from),
                        "ignore_changes": list(obj.ignore_changes),
                        "spec": obj.spec, "api": session.get(obj.kind, obj.remote_id),
                        "items": [{"list": i.list_name, "key": i.key, "id": i.remote_id, "archived": i.archived}
                                  for i in obj.items]})
    return out


def import_objects(store: Store, backend: Backend | None = None):
    """Adopt the backend's objects the store maps to no key; returns them (kind, key, id, spec)."""
    from .adopt import adopt, unmanaged_objects

    found = unmanaged_objects(store, backend or default_backend())
    if found:
        adopt(store, found)
    return found


def objects_to_import(store: Store, manifests: list, backend: Backend | None = None):
    """What `import` writes: (kind, key, spec) of every object no manifest manages, after adopting
    the backend's objects that no key maps; and the addresses adopted now."""
    adopted = import_objects(store, backend)
    managed = {m.address for m in manifests}
    snapshot = current_state(store, backend)
    objects = [(o.kind, o.key, o.spec) for a, o in sorted(snapshot.objects.items()) if a not in managed]
    return objects, {a.address for a in adopted}


def add_credit_type(store: Store, name: str, *, credit_type_id: str | None = None) -> dict:
    """Make a custom credit type (pricing unit) in the embedded emulator, as an administrator
    makes one in Metronome's UI (the API only lists them). Returns it ({id, name, is_currency}).
    Raises emulator.refusals.RequestRefused for an empty or taken name or id."""
    from .apply.backends.embedded import EmbeddedBackend

    with store.transaction(holder="add credit type") as conn:
        emulator = EmbeddedBackend().emulator(conn)
        made = emulator.add_credit_type(name, credit_type_id=credit_type_id)
        emulator.flush()
    return made
