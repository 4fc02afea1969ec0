"""`import` names files after store keys: it never writes outside its directory or through a symlink."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import run_cli


def _applied_store_with_keys(tree: Path, renames: dict[str, str]) -> None:
    """The example account applied, then products renamed in the store (as another tool could)."""
    run_cli("init", cwd=tree, check=True)
    run_cli("apply", "--auto-approve", cwd=tree, check=True)
    with sqlite3.connect(tree / ".billing-reconciler" / "state.db") as db:
        for old, new in renames.items():
            assert db.execute("UPDATE objects SET key = ? WHERE kind = 'Product' AND key = ?", (new, old)).rowcount == 1


def test_keys_that_name_paths_are_refused_and_nothing_is_written_outside(example_tree: Path, tmp_path: Path):
    # Mutation caught: joining the store key into the path unchecked (the file lands outside).
    outside_abs = tmp_path.parent / f"{tmp_path.name}-abs"
    _applied_store_with_keys(example_tree, {"api-calls": str(outside_abs), "compute-hours": "../../escaped",
                                            "data-export": "fine-key"})
    result = run_cli("import", cwd=example_tree)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Product/{outside_abs}: not imported: key" in result.stderr
    assert "Product/../../escaped: not imported: key '../../escaped' is not a valid manifest key" in result.stderr
    assert "2 object(s) not imported" in result.stderr
    assert not Path(f"{outside_abs}.yaml").exists() and not outside_abs.exists()
    assert not (example_tree / "escaped.yaml").exists() and not (example_tree.parent / "escaped.yaml").exists()
    assert not list(example_tree.parent.glob("**/escaped.yaml"))
    # The others are still imported.
    assert (example_tree / "manifests" / "imported" / "products" / "fine-key.yaml").exists()
    assert "Imported 1 object(s)" in result.stdout


def test_a_symlink_in_the_import_directory_is_not_followed(example_tree: Path, tmp_path: Path):
    # Mutation caught: opening the file without O_NOFOLLOW (the outside file is overwritten).
    _applied_store_with_keys(example_tree, {"api-calls": "victim"})
    victim = tmp_path / "precious.txt"
    victim.write_text("do not overwrite\n")
    # Outside manifests/ (where the loader refuses any symlink before import writes anything).
    products = example_tree / "adopted" / "products"
    products.mkdir(parents=True)
    (products / "victim.yaml").symlink_to(victim)
    result = run_cli("import", "--out", "adopted", cwd=example_tree)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Product/victim: not imported:" in result.stderr and "symlink" in result.stderr
    assert victim.read_text() == "do not overwrite\n"


def test_a_symlinked_kind_directory_is_not_followed(example_tree: Path, tmp_path: Path):
    # Mutation caught: following a directory symlink on the way down (mkdir/open without O_NOFOLLOW).
    _applied_store_with_keys(example_tree, {"api-calls": "victim"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    imported = example_tree / "adopted"
    imported.mkdir(parents=True)
    (imported / "products").symlink_to(elsewhere, target_is_directory=True)
    result = run_cli("import", "--out", "adopted", cwd=example_tree)
    assert result.returncode == 1 and "symlink" in result.stderr
    assert list(elsewhere.iterdir()) == []
