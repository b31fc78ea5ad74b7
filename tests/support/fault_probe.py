"""Prints the faults this process injects (for the drill entry-point test)."""

from __future__ import annotations

from devstack import faults

if __name__ == "__main__":
    print(faults.enabled().model_dump_json())
