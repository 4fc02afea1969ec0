"""Views of a Plan: text (terminal), markdown (pull-request comment), json (plan file).

Renderers never compute what changed; they only lay out the Plan they are given.
"""

from __future__ import annotations

from collections.abc import Callable

from ...redaction import NO_MARKS, AccountSecrets
from ..plan import Plan
from . import json_view, markdown, text

RENDERERS: dict[str, Callable[..., str]] = {
    "text": text.render,
    "markdown": markdown.render,
    "json": json_view.render,
}


def render(plan: Plan, fmt: str, *, color: bool = False, secrets: AccountSecrets = NO_MARKS) -> str:
    """`secrets`: what the manifests mark sensitive, on top of the built-in credential names."""
    return RENDERERS[fmt](plan, color=color, secrets=secrets)
