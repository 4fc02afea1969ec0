"""Request validation benchmark: µs per request for each candidate library, on our real bodies.

The bodies are what apply sends: the first apply of the generated account (bench/generate_account.py,
--customers N customers + N contracts, with metrics, products and the rate card) and of the shipped
example account (manifests/: subscriptions, recurring commits and credits, seat-based plans),
planned against an empty store and resolved as apply resolves them. Every body is validated by:

- `ours`: billing_reconciler.emulator.openapi.validate_request (path matching + fastjsonschema
  validator compiled per endpoint + Decimal bodies as built): what the emulator runs;
- `fastjsonschema`: the same converted strict schema, compiled validator called directly;
- `jsonschema`: the same converted strict schema, a Draft7Validator instance built once per
  endpoint (jsonschema's "compiled" form), with a format checker, `is_valid`;
- `openapi-core`: the unmodified document (it adds no strictness), a MockRequest with the body
  as JSON text (it takes bytes: Decimal bodies encoded with canonical.dumps), request validation;
- `jsonschema-rs` (if installed; not a dependency): the converted schema, bodies JSON round-tripped
  (it takes no Decimal).

It prints each library's one-off compile/set-up time and its µs/request (median of --runs passes
over all bodies) beside the anchor: 1 ms/request, the most that keeps an apply of 10,000
customers + 10,000 contracts (~20,000 requests) far under its 30 s. Exits 1 if `ours` misses it.

    python bench/bench_validate.py [--customers 2000] [--runs 5] [--skip openapi-core]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate_account import generate  # noqa: E402

from billing_reconciler import canonical  # noqa: E402
from billing_reconciler.apply.applier import resolve  # noqa: E402
from billing_reconciler.emulator import openapi  # noqa: E402
from billing_reconciler.emulator.schema_convert import SchemaConverter  # noqa: E402
from billing_reconciler.manifests import load_manifests  # noqa: E402
from billing_reconciler.plan.planner import build_plan  # noqa: E402
from billing_reconciler.store.store import Store  # noqa: E402

TARGET_US = 1000.0
Body = tuple[str, str, str, Any]  # method, concrete path, template, body


class _MadeUpIds(dict):
    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def planned_bodies(manifests: Path, work: Path) -> list[Body]:
    result = load_manifests(manifests)
    assert result.ok, [str(p) for p in result.problems[:5]]
    store = Store(f"sqlite:///{work}/state.db")
    store.init()
    plan = build_plan(result.manifests, store.snapshot(), manifests_digest=result.digest)
    store.close()
    now = datetime(2025, 1, 15, tzinfo=UTC)
    out = []
    for op in plan.operations:
        request = resolve(op.request, _MadeUpIds(), now)
        template, _ = openapi.match(request.method, request.path)
        out.append((request.method, request.path, template, request.body))
    return out


# --- the candidates: set-up (timed once) -> validate one body -----------------------------------

def converted_schemas(bodies: list[Body]) -> dict[tuple[str, str], dict]:
    schemas = {}
    operations = openapi.document()["paths"]
    components = openapi.document()["components"]["schemas"]
    for method, _, template, _ in bodies:
        key = (method.lower(), template)
        if key not in schemas:
            schema = operations[template][key[0]]["requestBody"]["content"]["application/json"]["schema"]
            schemas[key] = SchemaConverter(components).root(schema)
    return schemas


def setup_ours(bodies: list[Body]) -> Callable[[Body], None]:
    for method, path, _, body in bodies:  # compiles each endpoint once, as the first apply does
        openapi.validate_request(method, path, body)
    return lambda b: openapi.validate_request(b[0], b[1], b[3])


def setup_fastjsonschema(bodies: list[Body]) -> Callable[[Body], None]:
    import fastjsonschema

    checks = {k: fastjsonschema.compile(s, formats=openapi.FORMATS, use_default=False)
              for k, s in converted_schemas(bodies).items()}
    return lambda b: checks[(b[0].lower(), b[2])](b[3])


def setup_jsonschema(bodies: list[Body]) -> Callable[[Body], None]:
    import jsonschema

    checker = jsonschema.FormatChecker()
    validators = {k: jsonschema.Draft7Validator(s, format_checker=checker)
                  for k, s in converted_schemas(bodies).items()}

    def check(b: Body) -> None:
        if not validators[(b[0].lower(), b[2])].is_valid(b[3]):
            raise AssertionError(f"jsonschema refused {b[1]}")
    return check


def setup_openapi_core(bodies: list[Body]) -> Callable[[Body], None]:
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest

    spec = OpenAPI.from_dict(openapi.document())
    server = openapi.document()["servers"][0]["url"]

    def check(b: Body) -> None:
        request = MockRequest(server, b[0].lower(), b[1], data=canonical.dumps(b[3]).encode(),
                              headers={"Authorization": "Bearer bench"}, content_type="application/json")
        spec.validate_request(request)
    return check


def setup_jsonschema_rs(bodies: list[Body]) -> Callable[[Body], None]:
    import jsonschema_rs

    validators = {k: jsonschema_rs.validator_for(s) for k, s in converted_schemas(bodies).items()}

    def check(b: Body) -> None:
        validators[(b[0].lower(), b[2])].validate(json.loads(canonical.dumps(b[3])))
    return check


CANDIDATES: dict[str, Callable[[list[Body]], Callable[[Body], None]]] = {
    "ours": setup_ours,
    "fastjsonschema": setup_fastjsonschema,
    "jsonschema": setup_jsonschema,
    "openapi-core": setup_openapi_core,
    "jsonschema-rs": setup_jsonschema_rs,
}


def measure(name: str, bodies: list[Body], runs: int) -> tuple[float, float] | str:
    try:
        started = time.perf_counter()
        check = CANDIDATES[name](bodies)
        setup = time.perf_counter() - started
    except ImportError as missing:
        return f"not installed ({missing.name})"
    for body in bodies:  # every body must pass before it is timed
        check(body)
    passes = []
    for _ in range(runs):
        started = time.perf_counter()
        for body in bodies:
            check(body)
        passes.append((time.perf_counter() - started) / len(bodies) * 1e6)
    return setup, statistics.median(passes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000, help="customers (each with a contract) to plan")
    parser.add_argument("--runs", type=int, default=5, help="timed passes over all bodies (median shown)")
    parser.add_argument("--skip", default="", help="comma-separated candidates to leave out")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(args.customers, work / "generated")
        (work / "a").mkdir()
        (work / "b").mkdir()
        bodies = planned_bodies(work / "generated", work / "a") + planned_bodies(ROOT / "manifests", work / "b")
    kinds = sorted({b[2] for b in bodies})
    size = statistics.mean(len(canonical.dumps(b[3])) for b in bodies)
    print(f"{len(bodies)} request bodies ({args.customers} customers + contracts, and the example account), "
          f"{len(kinds)} endpoints, mean {size:.0f} bytes of JSON; median of {args.runs} passes\n")
    print(f"{'library':<16} {'set-up':>9} {'µs/request':>11} {'vs 1 ms target':>15}")
    print(f"{'(target)':<16} {'':>9} {TARGET_US:>11.1f} {'1.00x':>15}")
    ours = None
    for name in CANDIDATES:
        if name in skip:
            continue
        result = measure(name, bodies, args.runs)
        if isinstance(result, str):
            print(f"{name:<16} {result}")
            continue
        setup, per_request = result
        if name == "ours":
            ours = per_request
        print(f"{name:<16} {setup:>8.2f}s {per_request:>11.1f} {per_request / TARGET_US:>14.3f}x")
    if ours is not None:
        whole = ours * 2 * 10_000 / 1e6
        print(f"\nours at 10,000 customers + 10,000 contracts (20,000 requests): {whole:.2f} s of validation")
    return 0 if ours is None or ours <= TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
