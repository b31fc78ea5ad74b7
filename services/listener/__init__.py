"""The listener service (see the README's component table)."""
