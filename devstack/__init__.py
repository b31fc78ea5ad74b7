"""Local tooling: what runs the pipeline on one machine, never in a pipeline service.

The project's moto server (with DynamoDB's conditional writes made atomic and SNS notifications
signed with a local key), the local stack's process control, fault injection for drills, and
the in-process doubles tests and benchmarks build on (``devstack.testing``).

Why a package of its own, outside ``shared``: ``shared`` is what the services share, and each
pipeline image holds only that. A test (tests/test_architecture.py) proves that no pipeline
service's import closure reaches this package, and the production image does not ship it.
"""
