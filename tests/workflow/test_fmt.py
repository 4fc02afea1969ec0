"""`fmt`: canonical layout, comments kept, idempotent, and the same objects before and after."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from billing_reconciler.manifests import load_manifests, parse_file
from billing_reconciler.manifests.fmt import format_text
from tests.conftest import EXAMPLE_MANIFESTS, run_cli


def digests(text: str, name: str = "m.yaml") -> list[tuple[str, str]]:
    manifests, problems = parse_file(name, text)
    assert not problems, problems
    return [(m.address, m.digest) for m in manifests]


def comment_lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip().startswith("#"))


def _unformat(path: Path) -> None:
    """Rewrite a manifest file with each spec's fields in reverse order (comments kept)."""
    yaml = YAML(typ="rt")
    docs = list(yaml.load_all(path.read_text()))
    for doc in docs:
        for key in list(doc["spec"])[::-1]:
            doc["spec"].move_to_end(key)
    with path.open("w") as fh:
        yaml.dump_all(docs, fh)


def test_the_shipped_example_account_is_canonical(example_tree: Path):
    check = run_cli("fmt", "--check", cwd=example_tree)
    assert check.returncode == 0, check.stdout


def test_example_account_check_rewrite_idempotent_same_objects(example_tree: Path):
    for name in ("customers/widgetsexpress.yaml", "catalog/metrics.yaml"):
        _unformat(example_tree / "manifests" / name)
    before = load_manifests(example_tree / "manifests")
    texts = {p: p.read_text() for p in sorted((example_tree / "manifests").rglob("*.yaml"))}

    check = run_cli("fmt", "--check", cwd=example_tree)
    assert check.returncode == 1
    assert "would reformat manifests/customers/widgetsexpress.yaml" in check.stdout
    assert "Run `billing-reconciler fmt` to fix." in check.stderr
    assert all(p.read_text() == t for p, t in texts.items())  # --check writes nothing

    done = run_cli("fmt", cwd=example_tree)
    assert done.returncode == 0 and "reformatted manifests/customers/widgetsexpress.yaml" in done.stdout
    assert run_cli("fmt", "--check", cwd=example_tree).returncode == 0
    again = run_cli("fmt", cwd=example_tree)
    assert again.stdout.startswith("0 file(s) reformatted")

    after = load_manifests(example_tree / "manifests")
    assert after.ok
    assert sorted((m.address, m.digest) for m in after.manifests) == \
        sorted((m.address, m.digest) for m in before.manifests)
    for path, text in texts.items():
        assert comment_lines(path.read_text()) == comment_lines(text), path


def test_canonical_form_and_where_comments_go():
    text = """\
# yaml-language-server: $schema=../schemas/billing-reconciler.schema.json
# The header.
kind: Contract   # kind eol
apiVersion: billing-reconciler/v1
metadata:
  labels: {team: x}
  name: c1
spec:
  # about starting_at
  starting_at: "2024-11-01T00:00:00Z"
  customer: acme   # who

  # the commits
  commits:
  - key: k1
    # product comment
    product: "p"
    type: PREPAID   # type eol
    access_schedule:
      schedule_items:
      - {starting_at: 2024-11-01T00:00:00Z, amount: 100, ending_before: '2025-11-01T00:00:00Z'}
    # trailing in commit
  # before rate card
  rate_card: 'rc'
  # end of spec
# end of doc
---
# doc 2 header
apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: p}
spec: {type: FIXED, name: "P", tags: ['1.0', 'yes', "a: b"]}
"""
    expected = """\
# yaml-language-server: $schema=../schemas/billing-reconciler.schema.json
# The header.
apiVersion: billing-reconciler/v1
kind: Contract   # kind eol
metadata:
  name: c1
  labels: {team: x}
spec:
  customer: acme   # who
  # about starting_at
  starting_at: 2024-11-01T00:00:00Z
  # before rate card
  rate_card: rc

  # the commits
  commits:
    - key: k1
      type: PREPAID # type eol
      # product comment
      product: p
      access_schedule:
        schedule_items:
          - {amount: 100, starting_at: 2024-11-01T00:00:00Z, ending_before: 2025-11-01T00:00:00Z}
    # trailing in commit
  # end of spec
# end of doc
---
# doc 2 header
apiVersion: billing-reconciler/v1
kind: Product
metadata: {name: p}
spec: {name: P, type: FIXED, tags: ['1.0', yes, 'a: b']}
"""
    out = format_text(text)
    assert out == expected
    assert format_text(out) == out
    assert digests(out) == digests(text)


def test_files_without_manifests_are_left_alone(tmp_path: Path):
    workflow = tmp_path / "ci.yaml"
    workflow.write_text("on:   push\njobs: {a: 1}\n")
    result = run_cli("fmt", "--check", str(workflow), cwd=tmp_path)
    assert result.returncode == 0 and workflow.read_text() == "on:   push\njobs: {a: 1}\n"
    assert format_text("# only a comment\n") is None


def test_unreadable_files_are_reported_and_left_unchanged(tmp_path: Path):
    (tmp_path / "manifests").mkdir()
    broken = tmp_path / "manifests" / "broken.yaml"
    broken.write_text("apiVersion: billing-reconciler/v1\nkind: Product\nmetadata: {name: [\n")
    lossy = tmp_path / "manifests" / "lossy.yaml"
    lossy_text = "apiVersion: billing-reconciler/v1\nkind: Product\nmetadata: {name: p}\nspec: {name: P, type: FIXED}\n" \
                 "---\n# a comment in an empty document\n"
    lossy.write_text(lossy_text)
    result = run_cli("fmt", cwd=tmp_path)
    assert result.returncode == 1
    assert re.search(r"manifests/broken.yaml:\d+:\d+: cannot format: YAML error", result.stderr)
    assert "manifests/lossy.yaml:1:1: cannot format without losing a comment" in result.stderr
    assert lossy.read_text() == lossy_text
    data = json.loads(run_cli("fmt", "--check", "--format", "json", cwd=tmp_path).stdout)
    assert data["ok"] is False and len(data["problems"]) == 2


def test_pre_commit_passes_file_names(example_tree: Path):
    path = example_tree / "manifests" / "catalog" / "products.yaml"
    assert run_cli("fmt", "--check", str(path.relative_to(example_tree)), cwd=example_tree).returncode == 0
    other = example_tree / "manifests" / "catalog" / "metrics.yaml"
    _unformat(other)
    unformatted = other.read_text()
    result = run_cli("fmt", "--check", "manifests/catalog/metrics.yaml", "manifests/catalog/products.yaml",
                     cwd=example_tree)
    assert result.returncode == 1 and result.stdout.splitlines()[0] == "would reformat manifests/catalog/metrics.yaml"
    assert other.read_text() == unformatted


def test_import_output_is_already_canonical(example_tree: Path):
    env = {"BILLING_RECONCILER_STORE": f"sqlite:///{example_tree}/s/state.db"}
    run_cli("init", cwd=example_tree, env=env, check=True)
    run_cli("apply", "--auto-approve", cwd=example_tree, env=env, check=True)
    shutil.rmtree(example_tree / "manifests" / "customers")
    run_cli("import", cwd=example_tree, env=env, check=True)
    result = run_cli("fmt", "--check", "manifests/imported", cwd=example_tree)
    assert result.returncode == 0, result.stdout


# --- any key order, any indentation: the same canonical text and the same objects ----------------

_EXAMPLE_DOCS = [(path.name, path.read_text()) for path in sorted(EXAMPLE_MANIFESTS.rglob("*.yaml"))]


def _shuffled(node, rng: random.Random | None, model=None, envelope: bool = False):
    """A copy without comments, the keys of the model's mappings in a random order (rng None: as
    they were). Free-form mappings (custom_fields, configuration...) keep their order: fmt does too."""
    from billing_reconciler.manifests.fmt import _unwrap
    from billing_reconciler.manifests.model import SPEC_MODELS, Metadata

    if isinstance(node, dict):
        keys = list(node)
        if rng is not None and (model is not None or envelope):
            rng.shuffle(keys)
        out = CommentedMap()
        for key in keys:
            if envelope:
                sub = {"spec": SPEC_MODELS.get(node.get("kind")), "metadata": Metadata}.get(key)
            elif model is not None and key in model.model_fields:
                sub, mapping_of = _unwrap(model.model_fields[key].annotation)
                if mapping_of:
                    sub = None  # a name -> model mapping: names are free (values not shuffled either)
            else:
                sub = None
            out[key] = _shuffled(node[key], rng, sub)
        if getattr(node, "fa", None) is not None and node.fa.flow_style():
            out.fa.set_flow_style()
        return out
    if isinstance(node, list):
        out = CommentedSeq(_shuffled(v, rng, model) for v in node)
        if getattr(node, "fa", None) is not None and node.fa.flow_style():
            out.fa.set_flow_style()
        return out
    return node


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(_EXAMPLE_DOCS) - 1), seed=st.integers(0, 2**32),
       mapping=st.sampled_from([2, 4]), offset=st.sampled_from([0, 2]))
def test_any_key_order_and_indentation_formats_to_the_same_text(index, seed, mapping, offset):
    name, text = _EXAMPLE_DOCS[index]

    def dump(rng: random.Random | None) -> str:
        yaml = YAML(typ="rt")
        docs = [_shuffled(d, rng, envelope=True) for d in yaml.load_all(text)]
        yaml.indent(mapping=mapping, sequence=mapping + offset, offset=offset)
        buffer = io.StringIO()
        yaml.dump_all(docs, buffer)
        return buffer.getvalue()

    out = format_text(dump(random.Random(seed)))
    assert out == format_text(dump(None))
    assert format_text(out) == out
    assert digests(out, name) == digests(text, name)
