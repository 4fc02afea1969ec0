"""Usage events: parsing files (JSON Lines, CSV), ingesting them into the store, and aggregating
them in SQL for the rating engine."""
