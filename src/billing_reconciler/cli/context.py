"""Settings shared by all commands (global options)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from ..workdir import STATE_DIR, ignore_state_dir

DEFAULT_STORE = f"sqlite:///{STATE_DIR}/state.db"


@dataclass
class Settings:
    store_url: str | None
    manifests_dir: str
    use_cache: bool
    no_color: bool
    events_db: str | None = None
    events_memory: str | None = None
    engine: str = "duckdb"
    spark_url: str | None = None
    backend_name: str = "embedded"
    parallelism: int | None = None  # --parallelism of plan/apply (None: the backend's default)
    _backend: object = None

    def backend(self):
        """The backend of --backend, made once: the embedded emulator, or the Metronome API."""
        if self._backend is None:
            if self.backend_name == "metronome":
                from ..apply.backends.metronome import MetronomeBackend

                self._backend = MetronomeBackend()
                if self.parallelism is not None:
                    self._backend.parallelism = self.parallelism
            else:
                from ..apply.backends.embedded import EmbeddedBackend

                self._backend = EmbeddedBackend()
        return self._backend

    @property
    def store(self) -> str:
        return self.store_url or DEFAULT_STORE

    def manifest_cache(self):
        if not self.use_cache:
            return None
        from ..manifests.cache import ManifestCache

        # In the user's cache directory, never in the work tree (see manifests/cache.py).
        return ManifestCache.for_manifests(self.manifests_dir)

    @property
    def ci(self) -> bool:
        """CI=true (GitHub Actions, GitLab, most CI systems set it): no prompts, no progress bars."""
        return os.environ.get("CI", "").lower() in ("1", "true", "yes")

    @property
    def color(self) -> bool:
        if self.no_color or os.environ.get("NO_COLOR"):
            return False
        return click.get_text_stream("stdout").isatty()


def ignore_working_files() -> None:
    """`init`: `.billing-reconciler/` exists and ignores itself in git."""
    ignore_state_dir()


pass_settings = click.make_pass_decorator(Settings)
