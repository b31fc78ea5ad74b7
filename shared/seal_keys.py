"""The seal keys of ``LAVA_LABELING__SEAL_KEYS`` (``shared/seal.py``), checked when settings
load: a module of its own, so that the settings need nothing of what sealing uses."""

from __future__ import annotations

# Shorter keys are refused: a guessable key would let anyone seal an output.
MIN_KEY_CHARS = 32


class SealKeyError(ValueError):
    """A seal key that cannot be used (too short)."""


def seal_keys(setting: str) -> list[bytes]:
    """The keys of a comma-separated setting (newest first); none when it is empty."""
    keys = [k.strip() for k in setting.split(",") if k.strip()]
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS:
            raise SealKeyError(
                f"seal key {number} has {len(key)} characters; at least {MIN_KEY_CHARS} "
                "(`python -c 'import secrets; print(secrets.token_hex(32))'` makes one)"
            )
    return [k.encode() for k in keys]
