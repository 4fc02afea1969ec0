"""`fmt`: rewrite manifest files in canonical form, keeping every comment.

Canonical form: the envelope in the order apiVersion, kind, metadata, spec; every mapping's keys
in the order of the pydantic model's fields (unknown keys after them, as written); mappings
indented by 2, sequence items by 4 with the dash at 2 (the layout `import` writes); strings quoted
only when YAML needs it, timestamps never. Flow (`[a, b]`, `{a: 1}`) or block style is kept as
written. Values are not touched, so a formatted file validates to the same digests.

The rewrite is a ruamel.yaml round trip. Comments travel with the key they precede: a comment
on its own line(s) above a key moves with that key, an end-of-line comment stays on its line, and
comments after the last entry of a mapping stay at its end. A file in which the round trip would
lose a comment (e.g. a comment in an empty document) is reported and left as it is.
"""

from __future__ import annotations

import io
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agreement import forbidden_character
from .errors import Problem
from .loader import display_path, manifest_files
from .parse import fast_parse, syntax_error
from .reading import Unreadable, read_manifest

API_GROUP = "billing-reconciler/"
ENVELOPE_ORDER = ("apiVersion", "kind", "metadata", "spec")
# The layout `import` writes: mappings indented by 2, list items by 4 with the dash at 2.
MAPPING_INDENT, SEQUENCE_INDENT, SEQUENCE_OFFSET = 2, 4, 2
# Timestamps are written plain (2024-11-01T00:00:00Z), as people write them; a quoted one reads
# the same to the loader (a string either way), so unquoting changes no digest.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


class FormatError(Exception):
    def __init__(self, line: int, column: int, message: str):
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


@dataclass
class FmtResult:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # YAML files without any manifest document
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the YAML emitter ----------------------------------------------------------------------------


class _PlainTimestamp(str):
    """A timestamp held as text, written without quotes."""


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.indent(mapping=MAPPING_INDENT, sequence=SEQUENCE_INDENT, offset=SEQUENCE_OFFSET)
    yaml.width = 120
    yaml.representer.add_representer(
        _PlainTimestamp, lambda r, v: r.represent_scalar("tag:yaml.org,2002:timestamp", str(v)))
    return yaml


# --- models: which order the keys of each mapping go in --------------------------------------


def _spec_models() -> dict[str, Any]:
    from .model import SPEC_MODELS

    return SPEC_MODELS


def _metadata_model() -> Any:
    from .model import Metadata

    return Metadata


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(model of the values, True if it is a mapping of name -> model) for a field annotation."""
    from pydantic import BaseModel

    def model_in(tp: Any) -> tuple[Any, bool]:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp, False
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is dict and len(args) == 2:
            inner, _ = model_in(args[1])
            return (inner, True) if inner is not None else (None, False)
        for arg in args:
            found = model_in(arg)
            if found[0] is not None:
                return found
        return None, False

    return model_in(annotation)


def _field_orders(model: Any) -> list[str]:
    return list(model.model_fields) if model is not None and hasattr(model, "model_fields") else []


# --- comments ----------------------------------------------------------------------------------
#
# ruamel.yaml keeps the comment lines between two entries with whatever came before them: in the
# end-of-line slot of the previous entry's deepest last value, or in the `end` list of the
# collection that value closes. Before a mapping is reordered, those lines are taken out and put
# in the "before" slot of the key they precede, which ruamel emits above that key wherever it is.


def _is_block(node: Any) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    return isinstance(node, (CommentedMap, CommentedSeq)) and len(node) > 0 and not node.fa.flow_style()


def _column(token: Any) -> int:
    try:
        return int(token.column)
    except (AttributeError, TypeError):
        return 0


def _tokens_text(tokens: Any) -> str:
    """Comment tokens (of `end` lists and before slots) as text lines with their indentation."""
    out = ""
    for token in tokens or []:
        if token is None:
            continue
        value = token.value
        out += (" " * _column(token) + value) if value.strip() else value
    return out


def _slot(owner: Any, key: Any) -> tuple[list[Any], int]:
    from ruamel.yaml.comments import CommentedMap

    entry = owner.ca.items.setdefault(key, [None, None, None, None])
    return entry, 2 if isinstance(owner, CommentedMap) else 0


def _last_key(node: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap

    return next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1


def _take_following_lines(owner: Any, key: Any) -> str:
    """Remove and return the full comment/blank lines after an entry (not its end-of-line comment)."""
    value = owner[key]
    text = ""
    if _is_block(value):
        text = _take_following_lines(value, _last_key(value))
    else:
        entry = owner.ca.items.get(key)
        _, index = _slot(owner, key) if entry is not None else (None, 0)
        token = entry[index] if entry is not None else None
        if token is not None and isinstance(token.value, str) and "\n" in token.value:
            cut = token.value.index("\n")
            eol, rest = token.value[:cut + 1], token.value[cut + 1:]
            if eol.strip():
                token.value = eol
            else:
                entry[index] = None
            text = rest
    end = getattr(value.ca, "end", None) if hasattr(value, "ca") else None
    if end:
        text += _tokens_text(end)
        value.ca.end = []
    return text


def _append_following_lines(owner: Any, key: Any, text: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    if not text:
        return
    value = owner[key]
    if _is_block(value):
        _append_following_lines(value, _last_key(value), text)
        return
    entry, index = _slot(owner, key)
    if entry[index] is None:
        entry[index] = CommentToken("\n" + text, CommentMark(0))
    else:
        entry[index].value += text


def _before_tokens(text: str, column: int | None = None) -> list[Any]:
    """Tokens for comment lines above a key, at the key's column (else where they were)."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    tokens = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped:
            at = column if column is not None else len(line) - len(stripped)
            tokens.append(CommentToken(stripped + "\n", CommentMark(at)))
        else:
            tokens.append(CommentToken("\n", CommentMark(0)))
    return tokens


def _key_column(node: Any, key: Any) -> int | None:
    try:
        return int(node.lc.key(key)[1])
    except Exception:  # noqa: BLE001 - a node built in memory has no position
        return None


def _split_deeper(text: str, column: int | None) -> tuple[str, str]:
    """(leading comment lines indented deeper than `column`, the rest)."""
    if column is None or not text:
        return "", text
    lines = text.splitlines(keepends=True)
    cut = 0
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped.strip():
            continue
        if len(line) - len(stripped) > column:
            cut = i + 1
        else:
            break
    return "".join(lines[:cut]), "".join(lines[cut:])


def _set_before(owner: Any, key: Any, text: str, column: int | None = None) -> None:
    """Put comment/blank lines above `key`, ahead of any it already has."""
    if not text:
        return
    entry = owner.ca.items.setdefault(key, [None, None, None, None])
    entry[1] = _before_tokens(text, column) + list(entry[1] or [])


# --- reordering ----------------------------------------------------------------------------------


def _reorder(node: Any, model: Any, mapping_of: bool = False, lead: tuple[Any, Any] | None = None,
             column: int = 0) -> None:
    """Children first, then this mapping (so that comments found at a child's end are final).

    `lead`: (parent mapping, key) when `node` is the value of a key, whose slot holds the comment
    lines above node's first key. `column`: where node's keys (or a list's dashes) are written.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedSeq):
        for item in node:
            _reorder(item, model, column=column + SEQUENCE_INDENT - SEQUENCE_OFFSET)
        return
    if not isinstance(node, CommentedMap):
        return
    if mapping_of:  # a dict[str, Model]: names are free, every value is a model
        for key in node:
            _reorder(node[key], model, lead=(node, key), column=_child_column(node[key], column))
        return
    fields = _field_orders(model)
    for key in node:
        sub, sub_mapping = (None, False)
        if model is not None and key in getattr(model, "model_fields", {}):
            sub, sub_mapping = _unwrap(model.model_fields[key].annotation)
        _reorder(node[key], sub, sub_mapping, lead=(node, key), column=_child_column(node[key], column))
    if fields:
        _apply_order(node, fields, lead, column)


def _child_column(value: Any, column: int) -> int:
    """Column of a key's block value: a mapping's keys indent by 2, a list's dashes by 2 too."""
    return column + MAPPING_INDENT if not _is_block(value) or isinstance(value, dict) else column + SEQUENCE_OFFSET


def _apply_order(node: Any, fields: list[str] | tuple[str, ...], lead: tuple[Any, Any] | None = None,
                 column: int | None = None) -> None:
    keys = list(node)
    position = {name: i for i, name in enumerate(fields)}
    wanted = sorted(keys, key=lambda k: (position.get(k, len(fields)), keys.index(k)))
    if wanted == keys:
        return
    # Comment lines above a key (stored after the previous entry) become the key's own; those
    # indented deeper than the keys close the previous entry's value and stay with it.
    source_column = _key_column(node, keys[0])
    before = {}
    for i in range(1, len(keys)):
        own, following = _split_deeper(_take_following_lines(node, keys[i - 1]), source_column)
        _append_following_lines(node, keys[i - 1], own)
        before[keys[i]] = following
    tail = _take_following_lines(node, keys[-1])
    if lead is not None and wanted[0] != keys[0]:
        # The lines above the first key are kept by the parent; they go with that key.
        parent, parent_key = lead
        entry = parent.ca.items.get(parent_key)
        if entry is not None and entry[3]:
            before[keys[0]] = _tokens_text(entry[3])
            entry[3] = None
            if node.ca.comment is not None and len(node.ca.comment) > 1:
                node.ca.comment[1] = None
    for key in wanted:
        node.move_to_end(key)
    for key in wanted:
        _set_before(node, key, before.get(key, ""), column)
    _append_following_lines(node, wanted[-1], tail)


def _unquote_timestamps(node: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        for key in node:
            node[key] = _unquote_timestamps(node[key])
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            node[i] = _unquote_timestamps(item)
    elif type(node) is str and _TIMESTAMP.fullmatch(node):
        return _PlainTimestamp(node)
    return node


def _is_manifest(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and doc["apiVersion"].startswith(API_GROUP)


def format_document(doc: Any) -> None:
    """Reorder one loaded (round-trip) manifest document in place."""
    models = _spec_models()
    spec_model = models.get(doc.get("kind")) if isinstance(doc.get("kind"), str) else None
    if "spec" in doc:
        _reorder(doc["spec"], spec_model, lead=(doc, "spec"), column=MAPPING_INDENT)
    if "metadata" in doc:
        _reorder(doc["metadata"], _metadata_model(), lead=(doc, "metadata"), column=MAPPING_INDENT)
    _apply_order(doc, ENVELOPE_ORDER, column=0)
    _unquote_timestamps(doc)


# --- files -----------------------------------------------------------------------------------------


_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _comments(text: str) -> list[str]:
    """Comment texts, roughly (outside quotes on each line): enough to notice one going missing."""
    found = []
    for line in text.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"" and (i == 0 or line[i - 1] in " \t[{,:-"):
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                found.append(line[i:].rstrip())
                break
    return sorted(found)


def format_text(text: str) -> str | None:
    """The canonical text of a manifest file; None when it holds no manifest document.

    Raises FormatError for YAML that cannot be read, or that the round trip would change beyond
    layout (a lost comment).
    """
    refused = forbidden_character(text)
    if refused is not None:
        raise FormatError(refused[0], refused[1], f"cannot format: {refused[2]}")
    if fast_parse(text) is None:
        # What validate refuses, fmt refuses the same way, before the round-trip loader: an alias
        # bomb is cheap for it to load (aliases stay shared) but formatting walks every expansion
        # (fmt --check ran past 120 s where validate refused in 0.6 s).
        line, column, message = syntax_error(text)
        raise FormatError(line, column, f"cannot format: YAML error: {message}")
    yaml = _yaml()
    try:
        docs = list(yaml.load_all(text))
    except Exception as exc:  # noqa: BLE001 - any YAML error: report it located
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(line, column, f"cannot format: YAML error: {problem}") from None
    docs = [d for d in docs if d is not None]
    if not any(_is_manifest(d) for d in docs):
        return None
    for doc in docs:
        if _is_manifest(doc):
            format_document(doc)
    buffer = io.StringIO()
    yaml.dump_all(docs, buffer)
    out = buffer.getvalue()
    if _comments(out) != _comments(text):
        raise FormatError(1, 1, "cannot format without losing a comment (a comment in an empty document, or "
                                "after a final '---'?); move it into a document and run fmt again")
    return out


def format_files(paths: list[Path], *, write: bool) -> FmtResult:
    result = FmtResult()
    for path in paths:
        shown = display_path(path)
        try:
            text = read_manifest(path).decode("utf-8")
        except UnicodeDecodeError:
            result.problems.append(Problem(shown, 1, 1, None, "", "cannot format: file is not UTF-8 text"))
            continue
        except Unreadable as exc:
            result.problems.append(Problem(shown, 1, 1, None, "", f"cannot format: {exc}"))
            continue
        try:
            formatted = format_text(text)
        except FormatError as exc:
            result.problems.append(Problem(shown, exc.line, exc.column, None, "", exc.message))
            continue
        if formatted is None:
            result.skipped.append(shown)
        elif formatted == text:
            result.unchanged.append(shown)
        else:
            result.changed.append(shown)
            if write:
                path.write_text(formatted, encoding="utf-8")  # a regular file: read_manifest checked
    return result


def format_tree(directory: str | Path, *, write: bool) -> FmtResult:
    root = Path(directory)
    if not root.exists():
        return FmtResult(problems=[Problem(str(root), 0, 0, None, "",
                                           "manifest directory does not exist; create it or pass --manifests DIR")])
    return format_files(manifest_files(root), write=write)
