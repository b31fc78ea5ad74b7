"""Ground Truth streaming-job formats: typed models, writers and defensive parsers."""
