"""The manifest language: load, validate and export JSON Schemas."""

from .document import Manifest
from .errors import ManifestErrors, Problem
from .loader import LoadResult, load_manifests, load_or_raise

__all__ = ["LoadResult", "Manifest", "ManifestErrors", "Problem", "load_manifests", "load_or_raise"]
