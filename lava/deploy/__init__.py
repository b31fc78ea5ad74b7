"""Deployment tooling: lock files, IAM policies, broker definitions, manifest checks.

Each module renders or checks one artefact under ``deploy/`` or ``requirements/`` from the
code it describes, so the artefacts cannot drift from the code (tests compare them).
"""
