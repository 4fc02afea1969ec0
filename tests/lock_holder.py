"""Hold the store's apply lock until told to let go: the deterministic "other apply" of the
concurrency tests.

    python tests/lock_holder.py STORE_URL

Takes the lock through `Store.transaction()` (the code path `apply` uses), writes `locked` and a
newline to stdout once it holds it, then waits for a line on stdin and commits (changing nothing).
Tests wait on that line instead of polling with sleeps.
"""

from __future__ import annotations

import sys

from billing_reconciler.store.store import Store


def main(url: str) -> int:
    store = Store(url)
    with store.transaction(lock_timeout=60, holder="lock-holder"):
        sys.stdout.write("locked\n")
        sys.stdout.flush()
        sys.stdin.readline()
    sys.stdout.write("released\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
