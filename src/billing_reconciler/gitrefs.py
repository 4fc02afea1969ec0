"""Manifests at a git revision, read with git itself (no checkout), as a plan baseline.

`plan --from-ref origin/main` compares the working tree's manifests with the manifests of another
revision: the revision's objects stand in for the store, each as if it had been applied exactly as
written (no remote ids, so ids show as "(known after apply)"). The files are listed with
`git ls-tree -r` and read in one `git cat-file --batch`, so it works in a shallow CI clone as long
as the revision itself was fetched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from shlex import quote
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import canonical
from .manifests.document import Manifest
from .manifests.errors import PendingProblem, Problem
from .manifests.loader import MANIFEST_SUFFIXES, locate_all
from .plan.operations import ref as placeholder
from .store.store import Snapshot, StoredObject


class GitError(Exception):
    """git is missing, this is not a repository, or git failed."""


class RefNotFound(GitError):
    """The revision is not in this clone; the message says what to fetch."""


@dataclass
class RevisionManifests:
    ref: str
    commit: str
    directory: str  # the manifests directory, relative to the repository root
    manifests: list[Manifest]
    problems: list[Problem]
    files: int
    exists: bool  # False: the directory does not exist at that revision (everything is new)
    texts: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def short(self) -> str:
        return self.commit[:12]


def _git(args: list[str], cwd: Path, *, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    except FileNotFoundError:
        raise GitError("--from-ref reads the manifests from git, but `git` is not installed (not on PATH)") from None
    if check and result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise GitError(f"git {' '.join(args[:2])} failed: {message}")
    return result


def repository_root(start: Path) -> Path:
    result = _git(["rev-parse", "--show-toplevel"], start, check=False)
    if result.returncode != 0:
        raise GitError(f"--from-ref reads the manifests from git, but {start} is not inside a git repository")
    return Path(result.stdout.decode().strip()).resolve()


def resolve_commit(ref: str, cwd: Path) -> str:
    """The commit id of `ref`, or RefNotFound saying exactly what to fetch."""
    if not ref or ref.startswith("-"):
        raise GitError(f"not a git revision: {ref!r}")
    result = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd, check=False)
    if result.returncode == 0:
        return result.stdout.decode().strip()
    raise RefNotFound(_missing_ref_message(ref, cwd))


_HEX = re.compile(r"[0-9a-fA-F]{7,64}")
_ANCESTRY = re.compile(r"^(.*?)(?:[~^]\d*)+$")


def _missing_ref_message(ref: str, cwd: Path) -> str:
    remotes = _git(["remote"], cwd, check=False).stdout.decode().split()
    shallow = _git(["rev-parse", "--is-shallow-repository"], cwd, check=False).stdout.decode().strip() == "true"
    default_remote = "origin" if "origin" in remotes or not remotes else remotes[0]
    where = "this shallow clone" if shallow else "this repository"
    head = f"git revision '{ref}' is not in {where}"

    base = _ANCESTRY.match(ref)
    if base and base.group(1) and _git(["rev-parse", "--verify", "--quiet", f"{base.group(1)}^{{commit}}"],
                                       cwd, check=False).returncode == 0:
        if shallow:
            return (f"{head}: its history is cut off at the fetched commits. Fetch more history, then plan again:\n"
                    f"    git fetch --deepen=50 {quote(default_remote)}\n"
                    "or compare with a fetched branch instead, e.g. --from-ref origin/main")
        return f"{head}: {base.group(1)} has no such ancestor"

    name = ref[len("refs/remotes/"):] if ref.startswith("refs/remotes/") else ref
    remote, _, branch = name.partition("/")
    tail = ""
    if branch and (remote in remotes or (not remotes and remote in ("origin", "upstream"))):
        fetch = f"git fetch --depth=1 {quote(remote)} {quote(branch)}"
        if remote in remotes and not _tracks_all_branches(remote, cwd):
            # A single-branch clone (clone --depth/--branch): name where the branch must go.
            fetch = f"git fetch --depth=1 {quote(remote)} {quote(f'{branch}:refs/remotes/{remote}/{branch}')}"
        if remote not in remotes:
            tail = f"\n(this repository has no remote '{remote}' yet: add it first with `git remote add {remote} URL`)"
    elif _HEX.fullmatch(ref):
        fetch = f"git fetch --depth=1 {quote(default_remote)} {quote(ref)}"
        if len(ref) < 40:
            tail = "\n(give the full 40-character commit id: a server only fetches a commit by its full id)"
    elif ref.startswith("refs/tags/"):
        fetch = f"git fetch --depth=1 {quote(default_remote)} tag {quote(ref[len('refs/tags/'):])}"
    else:
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
        fetch = f"git fetch --depth=1 {quote(default_remote)} {quote(branch)}"
        tail = (f"\nthen plan with --from-ref {quote(f'{default_remote}/{branch}')} "
                "(the fetch creates that remote-tracking branch)")
    return f"{head}. Fetch it, then plan again:\n    {fetch}{tail}"


def _tracks_all_branches(remote: str, cwd: Path) -> bool:
    """Whether fetching a branch of `remote` updates refs/remotes/REMOTE/BRANCH by itself."""
    specs = _git(["config", "--get-all", f"remote.{remote}.fetch"], cwd, check=False).stdout.decode().split()
    return any(s.lstrip("+") == f"refs/heads/*:refs/remotes/{remote}/*" for s in specs)


SYMLINK_MODE = "120000"


def read_manifest_blobs(ref: str, manifests_dir: str | os.PathLike[str], cwd: Path | None = None
                        ) -> tuple[str, str, bool, list[tuple[str, bytes | None]]]:
    """(commit, directory relative to the repository root, exists, [(path, content)]) at `ref`;
    content None for a symlink (refused, as in the working tree: manifests/reading.py)."""
    cwd = Path.cwd() if cwd is None else cwd
    target = (cwd / manifests_dir).resolve()
    anchor = target if target.is_dir() else target.parent
    while not anchor.exists():
        anchor = anchor.parent
    root = repository_root(anchor)
    try:
        rel = target.relative_to(root).as_posix()
    except ValueError:
        raise GitError(f"the manifests directory {manifests_dir} is outside the git repository {root}") from None
    commit = resolve_commit(ref, root)
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    if rel != ".":
        args += ["--", rel]
    listing = _git(args, root).stdout.split(b"\0")
    entries: list[tuple[str, str]] = []
    exists = rel == "."
    for raw in listing:
        if not raw:
            continue
        meta, _, name_bytes = raw.partition(b"\t")
        name = name_bytes.decode("utf-8", errors="surrogateescape")
        if rel != "." and not (name == rel or name.startswith(rel + "/")):
            continue
        exists = True
        _mode, kind, oid = meta.decode().split()
        if kind != "blob" or not name.endswith(MANIFEST_SUFFIXES):
            continue
        inside = PurePosixPath(name).relative_to(rel) if rel != "." and name != rel else PurePosixPath(name)
        if any(part.startswith(".") for part in inside.parts):
            continue  # .git-like and hidden directories and files, as for the working tree
        entries.append((name, None if _mode == SYMLINK_MODE else oid))
    contents = iter(_cat_blobs([o for _, o in entries if o is not None], root))
    return commit, rel, exists, [(n, None if o is None else next(contents)) for n, o in entries]


def _cat_blobs(oids: list[str], root: Path) -> list[bytes]:
    if not oids:
        return []
    out = _git(["cat-file", "--batch"], root, input="".join(o + "\n" for o in oids).encode()).stdout
    blobs: list[bytes] = []
    at = 0
    for oid in oids:
        end = out.index(b"\n", at)
        header = out[at:end].decode().split()
        if len(header) != 3:
            raise GitError(f"git cat-file could not read object {oid}: {' '.join(header[1:])}")
        size = int(header[2])
        blobs.append(out[end + 1:end + 1 + size])
        at = end + 1 + size + 1
    return blobs


def load_manifests_at(ref: str, manifests_dir: str | os.PathLike[str], cwd: Path | None = None) -> RevisionManifests:
    """Validate the manifests of `ref` as the loader does; files are shown as `REF:path`."""
    from .manifests.pool import default_workers, parse_all
    from .manifests.references import check_references

    commit, rel, exists, blobs = read_manifest_blobs(ref, manifests_dir, cwd)
    pending: list[PendingProblem] = []
    texts: dict[str, str] = {}
    items: list[tuple[str, str, str]] = []
    for path, data in blobs:
        shown = f"{ref}:{path}"
        if data is None:
            pending.append(PendingProblem(shown, 0, None, (), "is a symlink; manifests are read only from regular "
                                          "files inside the manifests directory", line=1, column=1))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            pending.append(PendingProblem(shown, 0, None, (), f"file is not UTF-8 text ({exc.reason})",
                                          line=data.count(b"\n", 0, exc.start) + 1, column=1))
            continue
        texts[shown] = text
        items.append((shown, hashlib.sha256(data).hexdigest(), text))
    parsed = parse_all(items, default_workers(sum(len(t) for _, _, t in items))) if items else []
    manifests: list[Manifest] = []
    views = []
    for result in parsed:
        manifests.extend(result.manifests())
        pending.extend(result.problems)
        views.extend(result.reference_views())
    pending.extend(check_references(views))
    problems = locate_all(pending, texts)
    return RevisionManifests(ref, commit, rel, manifests, problems, len(blobs), exists, texts)


def baseline_snapshot(manifests: list[Manifest]) -> Snapshot:
    """The revision's objects as a store would hold them right after applying them.

    Bodies are the canonical specs and applied digests their digests (so nothing is drift), and
    remote ids are placeholders: an id the plan needs shows as "(known after apply)".
    """
    from .plan.lifecycle import desired_digest

    objects: dict[str, StoredObject] = {}
    for number, m in enumerate(sorted(manifests, key=lambda m: m.address), start=1):
        # Lifecycle metadata as applying the revision would record it (protect, ignored paths).
        objects[m.address] = StoredObject(
            id=number, kind=m.kind, key=m.name, remote_id=placeholder(m.address),
            body_text=canonical.dumps(m.spec), applied_digest=desired_digest(m), archived=False,
            protected=m.protect, moved_from=(), ignore_changes=m.ignore_changes)
    return Snapshot(lineage=None, serial=0, objects=objects)


class BaseRevisionErrors(Exception):
    """The manifests at the base revision do not validate: there is nothing sound to compare with."""

    def __init__(self, revision: RevisionManifests):
        self.revision = revision
        super().__init__(f"the manifests at {revision.ref} (commit {revision.short}) have "
                         f"{len(revision.problems)} problem(s)")


def plan_from_ref(manifests_dir: str | os.PathLike[str], ref: str, *, cache=None, targets: tuple[str, ...] = (),
                  prune: bool = False, replace: tuple[str, ...] = ()):
    """Plan the working tree's manifests against those of `ref` (no store involved).

    Raises ManifestErrors for the working tree, BaseRevisionErrors for the revision, GitError
    (RefNotFound) when git cannot give the revision.
    """
    from dataclasses import replace as with_changes

    from .manifests import ManifestErrors, load_manifests
    from .plan.planner import build_plan

    current = load_manifests(manifests_dir, cache=cache)
    if current.problems:
        raise ManifestErrors(current.problems)
    base = load_manifests_at(ref, manifests_dir)
    if base.problems:
        raise BaseRevisionErrors(base)
    plan = build_plan(current.manifests, baseline_snapshot(base.manifests), manifests_digest=current.digest,
                      targets=targets, prune=prune, replace=replace)
    extras = {**plan.extras, "from_ref": {"ref": ref, "commit": base.commit, "directory": base.directory,
                                          "exists": base.exists, "objects": len(base.manifests)}}
    return with_changes(plan, extras=extras)
