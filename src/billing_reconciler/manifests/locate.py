"""Find the line and column of a field path, with ruamel.yaml's round-trip loader.

Only used when something is wrong (or a file is rewritten): the round-trip loader is several
times slower than the bulk loader but keeps positions.
"""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError

from .agreement import document_spans
from .errors import Path

_DUPLICATE = re.compile(r'found duplicate key "(.*?)" with value')


def round_trip_loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


class _TextTimestamps(RoundTripConstructor):
    """Timestamps stay text: the bulk loader reads them so too, and a malformed one
    (2024-13-45) must not stop the whole file from being located."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _positions_loader() -> YAML:
    yaml = round_trip_loader()
    yaml.Constructor = _TextTimestamps
    return yaml


def load_documents_rt(text: str, loader: YAML | None = None) -> list[Any]:
    return list((loader or _positions_loader()).load_all(StringIO(text)))


class FileDocuments:
    """The documents of one file for locating: each parsed with the round-trip loader on its own,
    on first use, with its line offset in the file.

    Loading a whole multi-document file with the round-trip loader is super-linear (its comment
    handling rescans what it has gathered: 91 s for 10,000 small documents, 1.4 MB), and a file
    with one unknown field needs only one document located. Documents are cut at their `---`
    markers (agreement.document_spans); when a piece does not hold exactly one document, the whole
    file is loaded as before.
    """

    def __init__(self, text: str):
        self.text = text
        self.spans = document_spans(text)
        self._parsed: dict[int, tuple[Any, int]] = {}
        self._whole: list[Any] | None = None
        self._loader = _positions_loader()  # one per file: making one costs more than a small document
        self._line_offsets: list[int] | None = None

    def _line_offset(self, index: int) -> int:
        if self._line_offsets is None:  # one pass over the text, not one per document
            offsets, line, at = [], 0, 0
            for start, _ in self.spans:
                line += self.text.count("\n", at, start)
                offsets.append(line)
                at = start
            self._line_offsets = offsets
        return self._line_offsets[index]

    # Documents parsed per file to locate problems: each costs ~3 ms (the round-trip loader), so a
    # file with a typo in each of 100,000 documents would take minutes. Problems in documents past
    # this many are placed at their document's first line instead.
    BUDGET = 300

    def start_line(self, index: int) -> int:
        """1-based first line of a document (its `---`, or the file's first line)."""
        return self._line_offset(index) + 1 if 0 <= index < len(self.spans) else 1

    def within_budget(self, index: int) -> bool:
        return self._whole is not None or index in self._parsed or len(self._parsed) < self.BUDGET

    def get(self, index: int) -> tuple[Any, int] | None:
        """(document, its first line's offset in the file) or None when there is no such document."""
        if self._whole is None and index not in self._parsed and 0 <= index < len(self.spans):
            start, end = self.spans[index]
            docs = load_documents_rt(self.text[start:end], self._loader)
            if len(docs) == 1:
                self._parsed[index] = (docs[0], self._line_offset(index))
            else:
                self._whole = load_documents_rt(self.text, self._loader)
        if self._whole is not None:
            return (self._whole[index], 0) if 0 <= index < len(self._whole) else None
        return self._parsed.get(index)


def syntax_error(text: str) -> tuple[int, int, str] | None:
    """(line, column, message) of the first YAML syntax error, 1-based, or None."""
    try:
        for _ in _positions_loader().load_all(StringIO(text)):
            pass
    except DuplicateKeyError as exc:
        mark = exc.problem_mark or exc.context_mark
        found = _DUPLICATE.search(exc.problem or "")
        key = found.group(1) if found else "?"
        where = f"the mapping starting at line {exc.context_mark.line + 1}" if exc.context_mark else "this mapping"
        message = f"duplicate key '{key}': {where} already has it; a key may appear only once — remove or rename one"
        return (mark.line + 1, mark.column + 1, message) if mark else (1, 1, message)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = (exc.problem or exc.context or "not valid YAML").replace("\n", " ")
        context = exc.context_mark
        if exc.problem and exc.context and context is not None and (mark is None or context.line != mark.line):
            # e.g. an unclosed '[' is only noticed lines later: say where it was opened.
            message += f" ({exc.context} that starts at line {context.line + 1}, column {context.column + 1})"
        elif exc.problem and exc.context:
            message = f"{exc.context}: {message}"
        if "'\\t'" in message:
            message += "; indent with spaces, YAML does not allow tabs"
        if mark is None:
            return 1, 1, message
        return mark.line + 1, mark.column + 1, message
    except RecursionError:
        return 1, 1, "nested too deeply"
    except Exception as exc:  # noqa: BLE001 - any other loader complaint is a syntax error too
        return 1, 1, str(exc).replace("\n", " ")
    return None


def document_start_line(doc: Any) -> int:
    lc = getattr(doc, "lc", None)
    return (lc.line + 1) if lc is not None else 1


def locate(doc: Any, path: Path, at_key: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the deepest node on `path` that exists in `doc`.

    A path into a missing field lands on the mapping that should hold it; an unknown field
    (`at_key`) lands on its key; a bad value lands on the value.
    """
    node = doc
    line, column = _node_position(doc)
    for step, part in enumerate(path):
        if isinstance(node, CommentedMap) and part in node:
            try:
                kl, kc = node.lc.key(part)
                vl, vc = node.lc.value(part)
            except (KeyError, TypeError):  # a key merged in with '<<' has no position of its own
                break
            child = node[part]
            # Point at the key for containers (the field), at the value for scalars (the mistake).
            if isinstance(child, (CommentedMap, CommentedSeq)) or (at_key and step == len(path) - 1):
                line, column = kl, kc
            else:
                line, column = vl, vc
            node = child
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line, column = node.lc.item(part)
            except (KeyError, TypeError):
                break
            node = node[part]
        else:
            break
    return line + 1, column + 1


def _node_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0, 0
    return lc.line, lc.col
