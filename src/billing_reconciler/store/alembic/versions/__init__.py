"""The store's revisions, oldest first: v4 (baseline), v5, ... Each is frozen once released."""
