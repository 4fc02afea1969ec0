"""billing-reconciler: usage-based billing configuration as code."""

__version__ = "0.1.0"
