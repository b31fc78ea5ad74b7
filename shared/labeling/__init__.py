"""Streaming labeling jobs: the registry, the backends (SageMaker, emulator), job creation."""
