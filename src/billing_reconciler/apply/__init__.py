"""Executing plans: the applier and the backends it runs operations through."""
