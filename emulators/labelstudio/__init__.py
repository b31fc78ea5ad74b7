"""A simulated Label Studio annotator (local runs and tests)."""
