"""A faithful local stand-in for Ground Truth streaming labeling jobs (message level)."""
