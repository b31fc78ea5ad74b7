"""The ingest service (see the README's component table)."""
