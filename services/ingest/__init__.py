"""The ingest service (see the README's folder table and docs/services/)."""
