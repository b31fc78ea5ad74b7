"""Annotation tasks: their model, their DynamoDB table and the original's task spec.

The dispatcher owns the transitions of a running task; the operator front ends (the `lava`
CLI and the control service) read the same table and perform the operator's transitions
(retry, stop) through ``shared.operations``. One model, one store, every reader.
"""
