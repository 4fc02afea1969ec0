"""Parse many files, in worker processes when the tree is big enough to pay for them.

Parsing and validating is CPU-bound Python (YAML decoding, pydantic, canonical form), one file
independent of the others, so a cold load of a large tree scales with the cores. Results come
back as ParsedFile, whose specs are already JSON text: cheap to send and to cache.
"""

from __future__ import annotations

import multiprocessing
import os

from .parse import ParsedFile, parse_text

# Below this much YAML, starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 1 << 20
MAX_WORKERS = 8

Item = tuple[str, str, str]  # (display path, content hash, text)


def default_workers(total_bytes: int) -> int:
    if total_bytes < PARALLEL_MIN_BYTES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def parse_all(items: list[Item], workers: int) -> list[ParsedFile]:
    """ParsedFile per item, in the order given."""
    workers = min(workers, len(items))
    if workers <= 1:
        return [parse_text(*item) for item in items]
    methods = multiprocessing.get_all_start_methods()
    # fork: workers inherit the loaded modules instead of importing everything again. Import
    # the pydantic models here, once, rather than in every worker (0.4 s of CPU each).
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    if context.get_start_method() == "fork":
        from . import validate  # noqa: F401
    try:
        pool = context.Pool(workers)
    except OSError:  # e.g. no semaphores in a sandbox: parse here instead
        return [parse_text(*item) for item in items]
    # Biggest files first, so that no worker is left with a big one at the end.
    order = sorted(range(len(items)), key=lambda i: -len(items[i][2]))
    results: list[ParsedFile | None] = [None] * len(items)
    with pool:
        for i, parsed in pool.imap_unordered(_parse_indexed, [(i, items[i]) for i in order]):
            results[i] = parsed
    return results  # type: ignore[return-value]


def _parse_indexed(job: tuple[int, Item]) -> tuple[int, ParsedFile]:
    index, item = job
    return index, parse_text(*item)
