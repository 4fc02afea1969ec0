"""The manifest language: load, validate and export JSON Schemas."""

from typing import Any

from .cache import ManifestCache
from .document import Manifest
from .errors import ManifestErrors, Problem
from .loader import LoadResult, load_manifests, load_or_raise
from .parse import parse_file
from .references import walk

__all__ = ["LoadResult", "Manifest", "ManifestCache", "ManifestErrors", "Problem", "load_manifests",
           "load_or_raise", "parse_file", "validate_document", "walk"]


def __getattr__(name: str) -> Any:
    # validate_document needs the pydantic models (~0.4 s to import): only import them when asked,
    # so that a warm `validate` served from the cache never does.
    if name == "validate_document":
        from .validate import validate_document

        return validate_document
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
