"""The loader's pieces: file discovery, multi-document files, the parse cache, worker processes."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest

from decimal import Decimal

from billing_reconciler import canonical
from billing_reconciler.canonical import canonicalize, digest
from billing_reconciler.manifests import (
    LoadResult,
    Manifest,
    ManifestCache,
    ManifestErrors,
    load_manifests,
    load_or_raise,
)
from billing_reconciler.manifests import cache as cache_module
from billing_reconciler.manifests import parse as parse_module
from billing_reconciler.manifests.document import StoredManifest
from billing_reconciler.manifests.loader import manifest_files, parse_file
from billing_reconciler.manifests.references import walk

from ..conftest import EXAMPLE_MANIFESTS, ROOT

BASE = ROOT / "tests" / "bad_manifests" / "_base"


def product(name: str, type_: str = "FIXED") -> str:
    return f"apiVersion: billing-reconciler/v1\nkind: Product\nmetadata:\n  name: {name}\nspec:\n  name: {name}\n  type: {type_}\n"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the corpus' minimal valid account; paths are shown relative to tmp_path."""
    shutil.copytree(BASE, tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "manifests"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The display paths of the files actually parsed (not taken from the cache)."""
    seen: list[str] = []
    real = parse_module.parse_text

    def spy(shown: str, content_hash: str, text: str):
        seen.append(shown)
        return real(shown, content_hash, text)

    monkeypatch.setattr("billing_reconciler.manifests.pool.parse_text", spy)
    return seen


def load(directory: Path | str, cache: ManifestCache | None = None, **kw) -> LoadResult:
    return load_manifests(directory, cache=cache, **kw)


# --- files and documents ----------------------------------------------------------------------


def test_yml_files_nested_directories_and_what_is_skipped(tree: Path):
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "deep.yml").write_text(product("deep"))
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "ignored.yaml").write_text("not: [valid")
    (tree / ".ignored.yaml").write_text("not: [valid")
    (tree / "notes.txt").write_text("not: [valid")
    assert [p.relative_to(tree).as_posix() for p in manifest_files(tree)] == [
        "a/b/deep.yml", "catalog.yaml", "customer.yaml"]
    result = load(tree)
    assert result.ok and result.files == 3
    deep = next(m for m in result.manifests if m.name == "deep")
    assert deep.file == "manifests/a/b/deep.yml" and deep.index == 0


def test_a_single_file_can_be_loaded(tree: Path):
    result = load(tree / "catalog.yaml")
    assert result.ok and result.files == 1 and len(result.manifests) == 6


def test_multi_document_files_keep_each_documents_index(tree: Path):
    (tree / "more.yaml").write_text("---\n" + product("one") + "---\n" + product("two") + "...\n---\n" + product("three"))
    result = load(tree)
    assert [(m.name, m.index) for m in result.manifests if m.file.endswith("more.yaml")] == [
        ("one", 0), ("two", 1), ("three", 2)]


def test_empty_documents_and_files_are_ignored(tree: Path):
    (tree / "empty.yaml").write_text("")
    (tree / "comments.yaml").write_text("# nothing here yet\n")
    (tree / "separators.yaml").write_text("---\n---\n# c\n---\n" + product("after-empties") + "---\n")
    result = load(tree)
    assert result.ok, result.problems
    doc = next(m for m in result.manifests if m.name == "after-empties")
    assert doc.index == 2  # empty documents count for the index, as the round-trip loader counts them


def test_a_problem_in_a_later_document_is_located_in_that_document(tree: Path):
    (tree / "more.yaml").write_text(product("one") + "---\n" + product("two", "FIXD"))
    result = load(tree)
    [problem] = result.problems
    assert (problem.file, problem.line, problem.column, problem.address) == ("manifests/more.yaml", 15, 9, "Product/two")


def test_a_single_document_file_holding_a_list_is_one_non_mapping_document(tree: Path):
    (tree / "list.yaml").write_text("- a\n- b\n")
    [problem] = load(tree).problems
    assert (problem.file, problem.line) == ("manifests/list.yaml", 1)
    assert "must be a mapping" in problem.message


def test_missing_directory_is_one_problem(tmp_path: Path):
    result = load(tmp_path / "nope")
    assert not result.ok and "does not exist" in result.problems[0].message


def test_load_or_raise(tree: Path):
    assert load_or_raise(tree).ok
    (tree / "bad.yaml").write_text(product("bad", "NOPE"))
    with pytest.raises(ManifestErrors) as caught:
        load_or_raise(tree)
    assert "manifests/bad.yaml:7:9: Product/bad: spec.type: 'NOPE' is not allowed" in str(caught.value)


def test_valid_documents_of_a_broken_file_still_define_their_keys(tree: Path):
    # One broken product in the catalog must not make every reference to the others dangle.
    text = (tree / "catalog.yaml").read_text().replace("  type: SUBSCRIPTION", "  type: SUBSCRIPTON")
    (tree / "catalog.yaml").write_text(text)
    result = load(tree)
    assert [p.path for p in result.problems] == ["spec.type"]
    assert {m.address for m in result.manifests} >= {"Product/api-calls", "RateCard/cloud-2024"}


def test_digest_follows_file_contents(tree: Path):
    first = load(tree).digest
    assert load(tree).digest == first
    (tree / "customer.yaml").write_text((tree / "customer.yaml").read_text() + "\n# a comment\n")
    assert load(tree).digest != first


def test_manifest_spec_is_canonical_and_digested(tree: Path):
    contract = next(m for m in load(tree).manifests if m.kind == "Contract")
    assert contract.spec == canonicalize(contract.spec)
    assert contract.digest == digest(contract.spec)
    assert contract.spec["starting_at"] == "2024-11-01T00:00:00Z"
    assert str(contract.spec["overrides"][0]["multiplier"]) == "0.95"


def test_parse_file_and_walk_are_usable_on_their_own():
    docs, problems = parse_file("catalog.yaml", (BASE / "catalog.yaml").read_text())
    assert problems == [] and [d.name for d in docs][:2] == ["api-calls", "api-calls"]
    card = next(d for d in docs if d.kind == "RateCard")
    assert [(path, value) for path, value in walk(card.spec, "rates[*].product")] == [
        (("rates", 0, "product"), "api-calls"), (("rates", 1, "product"), "pro-plan")]


def test_stored_manifests_decode_their_json_spec_on_first_read():
    spec = {"name": "x", "type": "FIXED", "price": Decimal("0.25")}
    stored = StoredManifest.from_blob("Product", "x", canonical.dumps(spec), "f.yaml", 0, "sha256:1", {})
    plain = Manifest("Product", "x", dict(spec), "f.yaml", 0, "sha256:1", {})
    assert stored == plain and stored.address == "Product/x"
    assert stored.spec is stored.spec  # decoded once
    assert pickle.loads(pickle.dumps(stored)) == plain


# --- the parse cache --------------------------------------------------------------------------


def cache_at(tmp_path: Path) -> ManifestCache:
    return ManifestCache(tmp_path / ".cache" / "manifests.json")


def test_cache_hit_parses_nothing_and_gives_the_same_result(tree: Path, tmp_path: Path, parses: list[str]):
    cold = load(tree, cache_at(tmp_path))
    assert sorted(parses) == ["manifests/catalog.yaml", "manifests/customer.yaml"]
    parses.clear()
    warm = load(tree, cache_at(tmp_path))
    assert parses == []
    assert warm.manifests == cold.manifests and warm.digest == cold.digest and warm.ok
    assert load(tree).manifests == warm.manifests  # and the same as without any cache


def test_cache_miss_on_content_change_reparses_only_that_file(tree: Path, tmp_path: Path, parses: list[str]):
    load(tree, cache_at(tmp_path))
    parses.clear()
    path = tree / "customer.yaml"
    path.write_text(path.read_text().replace("name: Acme Corp", "name: Acme Corporation"))
    result = load(tree, cache_at(tmp_path))
    assert parses == ["manifests/customer.yaml"]
    assert next(m for m in result.manifests if m.kind == "Customer").spec["name"] == "Acme Corporation"


def test_a_change_in_one_file_rechecks_references_of_cached_files(tree: Path, tmp_path: Path, parses: list[str]):
    load(tree, cache_at(tmp_path))
    parses.clear()
    # Renaming the customer breaks the contract, whose file is unchanged and comes from the cache.
    path = tree / "customer.yaml"
    customer, contract = path.read_text().split("---\n")
    path.write_text(customer)
    (tree / "contract.yaml").write_text(contract)
    load(tree, cache_at(tmp_path))
    parses.clear()
    (tree / "customer.yaml").write_text(customer.replace("  name: acme\n", "  name: acme-inc\n"))
    result = load(tree, cache_at(tmp_path))
    assert parses == ["manifests/customer.yaml"]
    assert [(p.file, p.path) for p in result.problems] == [("manifests/contract.yaml", "spec.customer")]
    assert "did you mean 'acme-inc'?" in result.problems[0].message
    # The same broken tree again: the reference verdict comes from the cache, still reported.
    assert load(tree, cache_at(tmp_path)).problems == result.problems


def test_files_with_problems_are_not_cached(tree: Path, tmp_path: Path, parses: list[str]):
    (tree / "bad.yaml").write_text(product("bad", "NOPE"))
    first = load(tree, cache_at(tmp_path))
    parses.clear()
    second = load(tree, cache_at(tmp_path))
    assert parses == ["manifests/bad.yaml"]
    assert second.problems == first.problems and len(second.problems) == 1


def test_cache_drops_deleted_files(tree: Path, tmp_path: Path, parses: list[str]):
    (tree / "extra.yaml").write_text(product("extra"))
    load(tree, cache_at(tmp_path))
    (tree / "extra.yaml").unlink()
    result = load(tree, cache_at(tmp_path))
    assert "Product/extra" not in {m.address for m in result.manifests}
    extra_digest = hashlib.sha256(product("extra").encode()).hexdigest()
    assert extra_digest not in cache_at(tmp_path)._entries


def test_cache_is_invalidated_by_a_code_change(tree: Path, tmp_path: Path, parses: list[str],
                                               monkeypatch: pytest.MonkeyPatch):
    load(tree, cache_at(tmp_path))
    parses.clear()
    monkeypatch.setattr(cache_module, "_code_fingerprint", lambda: "another version of the rules")
    load(tree, cache_at(tmp_path))
    assert sorted(parses) == ["manifests/catalog.yaml", "manifests/customer.yaml"]


@pytest.mark.parametrize("content", [
    b"", b"garbage", b"\xff\xfe not utf-8", pickle.dumps(["not", "a", "cache"]), b"[]", b'{"format": 3}',
    b'{"format": 3, "fingerprint": "x", "files": {"a": [[1, 2]]}}', b"[" * 100_000])
def test_a_corrupt_cache_is_ignored(tree: Path, tmp_path: Path, content: bytes):
    # Mutation caught: letting a decode error or a foreign shape escape _load() (a traceback).
    path = tmp_path / ".cache" / "manifests.json"
    path.parent.mkdir()
    path.write_bytes(content)
    assert load(tree, ManifestCache(path)).ok
    assert load(tree, ManifestCache(path)).ok  # and it was rewritten
    assert json.loads(path.read_text().split("\n")[0])["format"] == cache_module.FORMAT


def test_a_damaged_cached_spec_is_not_served(tree: Path, tmp_path: Path, parses: list[str]):
    # Mutation caught: serving cached specs without checking the file's checksum.
    load(tree, cache_at(tmp_path))
    path = tmp_path / ".cache" / "manifests.json"
    text = path.read_text()
    assert text.count('"name":"Acme Corp"') == 1
    path.write_text(text.replace('"name":"Acme Corp"', '"name":"Evil Corp"'))
    parses.clear()
    result = load(tree, cache_at(tmp_path))
    assert sorted(parses) == ["manifests/catalog.yaml", "manifests/customer.yaml"]  # the whole file is ignored
    assert next(m for m in result.manifests if m.kind == "Customer").spec["name"] == "Acme Corp"


def test_an_unwritable_cache_only_costs_speed(tree: Path, tmp_path: Path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    assert load(tree, ManifestCache(blocker / "cache.pickle")).ok


def test_cached_manifests_keep_specs_as_text_until_read(tree: Path, tmp_path: Path):
    load(tree, cache_at(tmp_path))
    result = load(tree, cache_at(tmp_path))
    assert all(isinstance(m, StoredManifest) for m in result.manifests)
    contract = next(m for m in result.manifests if m.kind == "Contract")
    assert contract.spec["customer"] == "acme"


# --- worker processes -------------------------------------------------------------------------


def test_parsing_in_worker_processes_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(EXAMPLE_MANIFESTS, tmp_path / "manifests")
    (tmp_path / "manifests" / "broken.yaml").write_text(product("broken", "NOPE"))
    monkeypatch.chdir(tmp_path)
    inline = load("manifests", workers=1)
    pooled = load("manifests", workers=2)
    assert pooled.manifests == inline.manifests
    assert pooled.problems == inline.problems and len(pooled.problems) == 1
    assert pooled.digest == inline.digest


def test_a_warm_load_imports_neither_pydantic_nor_ruamel(tree: Path, tmp_path: Path):
    # The warm path's speed depends on it: those imports alone cost more than the whole load.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from billing_reconciler.manifests import ManifestCache, load_manifests\n"
        f"result = load_manifests('manifests', cache=ManifestCache({str(tmp_path / 'c.json')!r}))\n"
        "assert result.ok, result.problems\n"
        "print(sorted(m for m in ('pydantic', 'ruamel.yaml', 'click') if m in sys.modules))\n"
    )
    run = [sys.executable, "-c", script]
    cold = subprocess.run(run, cwd=tree.parent, capture_output=True, text=True, check=True)
    assert "pydantic" in cold.stdout
    warm = subprocess.run(run, cwd=tree.parent, capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == "[]"


def test_fast_canonical_form_agrees_with_canonical_module():
    # validate.canonical_dump is a faster canonical.canonicalize for model dumps; they must agree.
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    from billing_reconciler.manifests import model
    from billing_reconciler.manifests.validate import canonical_dump

    dumps = []
    for path in [*sorted(EXAMPLE_MANIFESTS.rglob("*.yaml")), *sorted(BASE.glob("*.yaml"))]:
        docs, problems = parse_file(str(path), path.read_text())
        assert problems == []
        for doc in docs:
            spec_model = model.SPEC_MODELS[doc.kind].model_validate(doc.spec)
            dumps.append(spec_model.model_dump(exclude_none=True))
    dumps.append({
        "at": datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=timezone.utc),
        "offset": datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        "n": [Decimal("1.50"), Decimal("2.0"), 3, 1.25, True, None],
        "free": {"a": {"b": {}, "c": []}, "d": [{}], "e": "", "f": 0},
        "empty": [], "none": None,
    })
    assert [canonical_dump(d) for d in dumps] == [canonicalize(d) for d in dumps]


def test_specs_keep_the_models_field_order_cold_and_warm(tree: Path, tmp_path: Path):
    # Mutation caught: storing specs as key-sorted JSON (request bodies and rendered plans then
    # list fields alphabetically instead of in the API's order).
    from billing_reconciler.manifests.parse import fast_parse
    from billing_reconciler.manifests.validate import validate_document

    def key_orders(value):
        if isinstance(value, dict):
            return [list(value), *(o for v in value.values() for o in key_orders(v))]
        if isinstance(value, list):
            return [o for v in value for o in key_orders(v)]
        return []

    for result in (load(tree, cache_at(tmp_path)), load(tree, cache_at(tmp_path))):
        for m in result.manifests:
            raw = fast_parse(Path(m.file).read_text())[m.index]
            fresh, _ = validate_document(raw, m.file, m.index)
            assert key_orders(m.spec) == key_orders(fresh.spec), m.address
