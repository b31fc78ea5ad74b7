"""Dataset tooling used by the CLI, the demo and the benchmarks (never by the services):
exports to BDD100K/Scalabel, COCO video and MOT Challenge, and the Markdown/PNG report."""
