"""Per-kind planners: each compares one kind and returns the operations it needs.

A new kind is a new module registered here, not a new branch in the planner.
"""

from __future__ import annotations

from .base import PLANNERS, KindPlanner  # noqa: F401
from . import contracts, customers, metrics, products, rate_cards  # noqa: F401,E402 - registration
