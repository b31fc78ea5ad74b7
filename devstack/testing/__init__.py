"""In-process doubles and example data for tests and benchmarks.

Everything here shares the production code's semantics (the in-memory bus settles messages with
the same acknowledgement policy; the example events are valid contract instances), so a test or
a benchmark built on it proves something about the real system. Nothing in the services imports
this package.
"""
