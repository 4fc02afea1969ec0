"""Inputs the two YAML parsers would read differently: refused, located, before any parsing.

The fast parser (yaml_rs) reads what the round-trip parser (ruamel.yaml, which locates errors,
formats and imports) refuses or reads otherwise. The known cases: a NUL byte ends yaml_rs's input
there, silently dropping every document after it (`validate` counted 17 objects of 22 and
`plan --prune` proposed archiving the rest); other control characters YAML does not allow pass
yaml_rs unnoticed. Each is an error at its line and column, in the words of the YAML spec.
A last guard checks that the fast parser returned at least one document per `---` marker.
"""

from __future__ import annotations

import re

# YAML 1.2 c-printable (ruamel.yaml's own check): tab, LF, CR, printable ASCII, NEL, and the
# BMP and astral planes without surrogates and U+FFFE/U+FFFF.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MARKER = re.compile(r"(?m)^---(?=[ \t\r\n]|$)")
_CONTENT_LINE = re.compile(r"(?m)^[ \t]*[^\s#%]")


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def forbidden_character(text: str) -> tuple[int, int, str] | None:
    """(line, column, message) of the first character YAML does not allow, if any."""
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    name = "a NUL byte" if code == 0 else f"control character U+{code:04X}"
    line, column = position(text, found.start())
    return line, column, (f"{name} is not allowed in YAML (the file may be truncated or binary); remove it, "
                          "or write it as an escape (\"\\x..\") inside a double-quoted string")


def lost_document(text: str, documents: int) -> tuple[int, int, str] | None:
    """When a parser returned fewer documents than the file's `---` markers start: where the
    first missing one begins. Every marker at column 0 starts a document (YAML 1.2 forbids it
    inside any scalar), and so does content before the first marker: a sound lower bound."""
    markers = [m.start() for m in _MARKER.finditer(text)]
    lead = 1 if _CONTENT_LINE.search(text, 0, markers[0] if markers else len(text)) else 0
    if documents >= len(markers) + lead:
        return None
    first_missing = documents - lead
    line = position(text, markers[first_missing])[0] if first_missing >= 0 else 1
    return line, 1, (f"the YAML parsers disagree about this file: {documents} document(s) read, but the "
                     f"document starting here was not; check the lines above it for unusual characters")


def document_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each document of the file, in the fast parser's order:
    one per `---` marker, plus the content before the first marker if there is any (comments and
    directives before the first marker belong to its document)."""
    markers = [m.start() for m in _MARKER.finditer(text)]
    if not markers:
        return [(0, len(text))]
    lead = _CONTENT_LINE.search(text, 0, markers[0]) is not None
    starts = [0, *markers] if lead else [0, *markers[1:]]
    return list(zip(starts, [*starts[1:], len(text)]))
