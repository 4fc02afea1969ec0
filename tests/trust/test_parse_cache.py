"""The parse cache is data outside the work tree: a pickle a pull request adds is never run."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.workflow.gitutil import commit_all, init_repo


class _Payload:
    """Unpickling this creates the file `marker`: the proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def pr_checkout(tmp_path: Path, example_tree: Path) -> tuple[Path, Path, dict[str, str]]:
    """A git checkout of the example account with a malicious pickle committed where the cache was."""
    repo = init_repo(example_tree)
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    old_cache = repo / ".billing-reconciler" / "cache"
    old_cache.mkdir(parents=True)
    (old_cache / "manifests.pickle").write_bytes(pickle.dumps(_Payload(marker)))
    commit_all(repo, "a pull request that force-adds a cache file")
    env = {"BILLING_RECONCILER_CACHE_DIR": str(tmp_path / "user-cache")}
    return repo, marker, env


def test_a_pickle_in_the_old_cache_location_is_never_executed(pr_checkout):
    # Mutation caught: reading (unpickling) anything from .billing-reconciler/cache/ in the work tree.
    repo, marker, env = pr_checkout
    run_cli("validate", cwd=repo, env=env, check=True)
    run_cli("validate", cwd=repo, env=env, check=True)  # warm: served from the user's cache
    run_cli("plan", "--from-ref", "HEAD", cwd=repo, env=env, check=True)
    run_cli("init", cwd=repo, env=env, check=True)
    run_cli("plan", "--out", "plan.json", cwd=repo, env=env, check=True)
    run_cli("apply", "plan.json", cwd=repo, env=env, check=True)
    assert not marker.exists()
    # The cache went to the user's cache directory, as JSON, and nothing into the work tree.
    written = list((Path(env["BILLING_RECONCILER_CACHE_DIR"])).glob("manifests-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text().split("\n")[0])["files"] == 5
    assert sorted(p.name for p in (repo / ".billing-reconciler" / "cache").iterdir()) == ["manifests.pickle"]


def test_a_pickle_or_garbage_in_the_users_cache_is_ignored_and_rebuilt(pr_checkout):
    # Mutation caught: a cache file that is not this format's JSON reaching the loader (a
    # traceback), or being kept instead of rewritten.
    repo, marker, env = pr_checkout
    run_cli("validate", cwd=repo, env=env, check=True)
    (cache_file,) = Path(env["BILLING_RECONCILER_CACHE_DIR"]).glob("manifests-*.json")
    for content in (pickle.dumps(_Payload(marker)), b"{\"format\": 3, \"files\": [", b"\x00" * 64):
        cache_file.write_bytes(content)
        result = run_cli("validate", cwd=repo, env=env)
        assert result.returncode == 0 and result.stdout.startswith("Valid: 22 objects"), result.stderr
        assert "Traceback" not in result.stderr
        assert json.loads(cache_file.read_text().split("\n")[0])["format"] == 3
    assert not marker.exists()


def test_cache_location_follows_xdg_cache_home(pr_checkout, tmp_path: Path):
    repo, _, env = pr_checkout
    env = {"BILLING_RECONCILER_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    run_cli("validate", cwd=repo, env=env, check=True)
    assert len(list((tmp_path / "xdg" / "billing-reconciler").glob("manifests-*.json"))) == 1
