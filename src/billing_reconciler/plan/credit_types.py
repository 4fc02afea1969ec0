"""Credit types (pricing units): named in manifests, looked up in the backend on every plan.

The billing API only lists credit types (they are made in Metronome's UI), so a manifest cannot
create one: it names one by the name the API lists (`credit_type: seat credits`), the way a
Terraform data source names an object another system owns. Each plan reads the backend's list
(`GET /v1/credit-types/list`), even with --no-refresh (Terraform reads data sources then too);
request bodies carry the id of the credit type of that name, and the readers map ids back to names.
A name the backend does not list makes the plan fail at the field that names it (file, line).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from ..manifests.errors import Path
from .api_body import CREDIT_TYPE, REFERENCE_FIELDS

# Manifest fields that name a credit type.
NAMING_FIELDS = frozenset(name for name, (_, kind) in REFERENCE_FIELDS.items() if kind == CREDIT_TYPE)


def credit_type_uses(value: Any, path: Path = ("spec",)) -> Iterator[tuple[Path, str]]:
    """(field path, credit type name) of every credit type a spec names."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name in NAMING_FIELDS and isinstance(item, str):
                yield (*path, name), item
            else:
                yield from credit_type_uses(item, (*path, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from credit_type_uses(item, (*path, i))


def check_credit_types(ctx, manifest) -> None:
    """Refuse, at its field, every credit type the manifest names that the backend does not list."""
    known = ctx.snapshot.credit_types
    for path, name in credit_type_uses(manifest.spec):
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        ctx.refuse(manifest, path,
                   f"the backend has no credit type named {name!r}; {hint}credit types are made in the billing "
                   f"system's UI, not by manifests (the backend lists: {', '.join(repr(k) for k in sorted(known))})")


def read_credit_types(session) -> dict[str, str]:
    """name -> id of every credit type the backend lists."""
    from .readers import credit_type_names

    return {name: credit_type_id for credit_type_id, name in sorted(credit_type_names(session).items())}
