"""The dispatcher service (see the README's folder table and docs/services/)."""
