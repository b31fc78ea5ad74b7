"""The dispatcher service (see the README's component table)."""
