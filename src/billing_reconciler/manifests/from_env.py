"""`{from_env: NAME}`: a manifest value kept out of git, read from the environment at plan/apply time.

Allowed where the models take text that may be a secret: custom field values, and the entries of a
customer's billing provider (and revenue system) `configuration`. Loading and `validate` keep the
reference as written (`{"from_env": "NAME"}`) and never read the environment, so they need no
variable set; the reference's path counts as sensitive (Manifest.sensitive), so the value is never
printed. `plan` and `apply` resolve each reference (`resolve`): an unset (or empty) variable is an
error naming it, the file, the line and the field. A resolved manifest's digest is that of its
resolved spec, as for any manifest (the store compares it with the backend's body to find
drift), so a changed value is a change. `plan --from-ref` does not resolve: it compares references.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .. import canonical
from ..specform import spec_digest
from .document import Manifest
from .errors import ManifestErrors, Path, PendingProblem, format_path

FROM_ENV = "from_env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and FROM_ENV in value


def references(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(path, variable name) of every `{from_env: ...}` inside `value`, in order."""
    if is_reference(value):
        yield path, value[FROM_ENV]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from references(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from references(item, (*path, i))


def shape_problems(raw_spec: Any) -> list[tuple[Path, str]]:
    """`{from_env: ...}` written wrong (where the models take any value, e.g. a configuration)."""
    out = []
    for path, name in references(raw_spec):
        if not isinstance(name, str) or not _NAME.match(name):
            out.append(((*path, FROM_ENV), f"from_env takes the name of an environment variable (letters, digits, "
                                           f"_; not starting with a digit), e.g. {{from_env: STRIPE_API_KEY}}"))
        else:
            node: Any = raw_spec
            for part in path:
                node = node[part]
            if len(node) != 1:
                extra = ", ".join(sorted(str(k) for k in node if k != FROM_ENV))
                out.append((path, f"a {{from_env: NAME}} value has no other fields (found {extra}); "
                                  f"write the whole value as {{from_env: {name}}}"))
    return out


# Where a reference may stand: the value of a custom field, or of a `configuration` entry.
ALLOWED_UNDER = frozenset({"custom_fields", "configuration"})


def _well_formed(value: Any) -> bool:
    return len(value) == 1 and isinstance(value[FROM_ENV], str) and bool(_NAME.match(value[FROM_ENV]))


def stand_ins(raw_spec: Any) -> tuple[Any, list[tuple[Path, dict[str, Any]]]]:
    """The raw spec with each well-formed reference in an allowed place replaced by a text (what
    the models check), and the references taken out (to put back into the validated spec)."""
    found = [(path, {FROM_ENV: name}) for path, name in references(raw_spec)
             if len(path) >= 2 and path[-2] in ALLOWED_UNDER and isinstance(path[-1], str)]
    found = [(path, ref) for path, ref in found if _well_formed(_at(raw_spec, path))]
    if not found:
        return raw_spec, []
    import copy

    spec = copy.deepcopy(raw_spec)
    for path, ref in found:
        _at(spec, path[:-1])[path[-1]] = f"${{from_env:{ref[FROM_ENV]}}}"
    return spec, found


def put_back(spec: dict[str, Any], found: list[tuple[Path, dict[str, Any]]]) -> None:
    for path, ref in found:
        _at(spec, path[:-1])[path[-1]] = dict(ref)


def _at(node: Any, path: Path) -> Any:
    for part in path:
        node = node[part]
    return node


def sensitive_paths(spec: dict[str, Any]) -> tuple[str, ...]:
    """`spec.<path>` of every reference: what Manifest.sensitive adds for them."""
    return tuple(format_path(("spec", *path)) for path, _name in references(spec))


def _mentions(manifest: Manifest) -> bool:
    """Whether a manifest has references, without parsing a spec still held as text (a no-op plan
    of 20,000 manifests never parses them)."""
    blob = getattr(manifest, "_blob", None)
    if isinstance(blob, str):
        return '"from_env"' in blob
    if isinstance(blob, bytes):
        return b'"from_env"' in blob
    return any(True for _ in references(manifest.spec))


def variables(manifests: list[Manifest]) -> list[str]:
    """The environment variables the manifests read, sorted (validate lists them)."""
    return sorted({name for m in manifests if _mentions(m) for _path, name in references(m.spec)})


def resolve(manifests: list[Manifest], environ: Mapping[str, str] | None = None) -> list[Manifest]:
    """The manifests with every reference replaced by its variable's value (ManifestErrors naming
    each variable unset or empty, located)."""
    from .loader import locate_all

    environ = os.environ if environ is None else environ
    out: list[Manifest] = []
    problems: list[PendingProblem] = []
    for manifest in manifests:
        if not _mentions(manifest):
            out.append(manifest)
            continue
        spec = canonical.loads(canonical.dumps(manifest.spec))  # a copy: the loaded manifest stays as written
        for path, name in list(references(spec)):
            value = environ.get(name)
            if not value:
                state = "is set but empty" if value == "" else "is not set"
                problems.append(manifest.problem(path=("spec", *path), message=(
                    f"environment variable {name} {state}; this field is {{from_env: {name}}}: set {name} in the "
                    "environment of plan and apply (validate does not need it)")))
                continue
            node: Any = spec
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        out.append(Manifest(manifest.kind, manifest.name, spec, manifest.file, manifest.index, spec_digest(spec),
                            manifest.labels, manifest.sensitive))
    if problems:
        raise ManifestErrors(locate_all(problems, {}))
    return out


def as_text(manifests: list[Manifest]) -> list[Manifest]:
    """References written as the text `(from_env NAME)`: for throw-away emulators (plan --from-ref
    --usage), which rate manifests without reading any secret."""
    out = []
    for manifest in manifests:
        if not _mentions(manifest):
            out.append(manifest)
            continue
        spec = canonical.loads(canonical.dumps(manifest.spec))
        for path, name in list(references(spec)):
            node: Any = spec
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = f"(from_env {name})"
        out.append(Manifest(manifest.kind, manifest.name, spec, manifest.file, manifest.index, manifest.digest,
                            manifest.labels, manifest.sensitive))
    return out
