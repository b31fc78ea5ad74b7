"""The postproc service (see the README's component table)."""
