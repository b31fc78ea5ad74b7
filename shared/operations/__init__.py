"""The operator's operations, one implementation each, for both front ends.

The `lava` CLI and the control service (`services/control/`) are two front ends over these
functions: the same reads, the same conditional writes, the same errors. A front end only
parses its input, calls one of them and renders the result (text or JSON).
"""
