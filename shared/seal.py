"""Sealed input messages: the dispatcher vouches for what it sent, so the listener can trust an
output without looking its key up.

Ground Truth's output message is the input manifest line with the labels added (sms-data-output:
the output manifest repeats each input line), so fields the dispatcher puts in an input come
back in its output, expired outputs included. The dispatcher adds the data object's level, the
trace context it was sent in, and a seal: HMAC-SHA256, under a key only the dispatcher and the
listener hold, over the namespace, the dedup key id, the level and the trace context. Every
key is committed before its first send, so an output whose seal opens names a data object the
dispatcher stored under that key: the listener takes the task, job and data object from the
key itself (``shared/dedup.py``) and skips the Query that would find them (docs/policy.md, "How
the listener trusts an output without a read").

An output with no seal, or one that does not open (sent before keys were set, under a key
retired since, or made by someone else), is looked up as before: a seal saves a request and
never refuses anything. Keys rotate: the first seals, every one opens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.dedup import KeyDirectory, KnownObject, parse_dedup_key, trace_headers
from shared.seal_keys import SealKeyError, seal_keys

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import LabelingSettings

LEVEL_FIELD = "lava-level"
TRACE_FIELD = "lava-trace"
SEAL_FIELD = "lava-seal"
SEAL_FIELDS = (LEVEL_FIELD, TRACE_FIELD, SEAL_FIELD)
# Above anything the dispatcher writes: a level, a 67-character seal and a W3C trace context
# (traceparent 55 characters, tracestate at most 512, baggage at most 8192 bytes). A longer
# field was not written by it and is not kept: its output is looked up.
MAX_FIELD_CHARS = 16384
_VERSION = "v1"


def seal_fields(message: Mapping[str, Any]) -> dict[str, str]:
    """The seal's fields of an input message, to keep beside what it became (a Label Studio
    task's import claim) and open later: only ASCII strings of a sensible length, as the
    dispatcher writes them (anything else could not open, and might not store)."""
    return {
        name: value
        for name in SEAL_FIELDS
        if isinstance(value := message.get(name), str)
        and len(value) <= MAX_FIELD_CHARS
        and value.isascii()
    }


class Sealer:
    """Seals input messages with the first key; opens outputs sealed with any of them.

    The seal covers the namespace too: a key shared by two deployments (say staging and
    production) opens neither's seals in the other, where a lookup would find nothing."""

    def __init__(self, keys: Sequence[bytes], namespace: str) -> None:
        if not keys:
            raise SealKeyError("a sealer needs at least one key")
        self._keys = tuple(keys)
        self.namespace = namespace

    @classmethod
    def of(cls, setting: str, namespace: str) -> Sealer | None:
        """The sealer of a setting's keys; None when none are set (every output looked up)."""
        keys = seal_keys(setting)
        return cls(keys, namespace) if keys else None

    @classmethod
    def configured(cls, settings: LabelingSettings) -> Sealer | None:
        """The sealer of a process's ``LAVA_LABELING__SEAL_KEYS``, in its namespace."""
        return cls.of(settings.labeling.seal_keys.get_secret_value(), settings.namespace)

    def fields(
        self, key_id: str, level: int, trace_context: Mapping[str, str] | None
    ) -> dict[str, str]:
        """The fields an input message carries for its output to be trusted without a lookup."""
        trace = _trace_text(trace_context)
        seal = self._seal(self._keys[0], key_id, level, trace)
        found = {LEVEL_FIELD: str(level), SEAL_FIELD: seal}
        if trace:
            found[TRACE_FIELD] = trace
        return found

    def open(self, message: Mapping[str, Any], key_id: str) -> KnownObject | None:
        """The data object an output's seal vouches for; None: no seal, or one that does not
        open under any key (the output is then looked up). Never raises: whatever an output
        carries, the worst it gets is a lookup."""
        try:
            return self._open(message, key_id)
        except Exception:  # a forged field of a kind not foreseen: look it up
            return None

    def _open(self, message: Mapping[str, Any], key_id: str) -> KnownObject | None:
        seal, level_text = message.get(SEAL_FIELD), message.get(LEVEL_FIELD)
        trace = message.get(TRACE_FIELD, "")
        parts = parse_dedup_key(key_id)
        if not (isinstance(seal, str) and isinstance(level_text, str) and isinstance(trace, str)):
            return None
        if parts is None or not _is_level(level_text):
            return None
        level = int(level_text)
        given = seal.encode()  # bytes: compare_digest refuses non-ASCII text
        if not any(
            hmac.compare_digest(given, self._seal(key, key_id, level, trace).encode())
            for key in self._keys
        ):
            return None
        context = _trace_context(trace)
        return KnownObject(parts.task_id, parts.job, parts.object_id, level, context)

    def _seal(self, key: bytes, key_id: str, level: int, trace: str) -> str:
        text = f"{_VERSION}\n{self.namespace}\n{key_id}\n{level}\n{trace}".encode()
        return f"{_VERSION}.{hmac.new(key, text, hashlib.sha256).hexdigest()}"


class KeyCheck:
    """The data object an output's dedup key was sent for: vouched for by its seal when the
    seal opens (no request), or else looked up (one Query). The listener's Ground Truth
    outputs (the seal is in the output) and Label Studio tasks (in the key's import claim)
    both check keys so; ``checked`` counts how ("seal" or "lookup")."""

    def __init__(
        self,
        sealer: Sealer | None,
        directory: KeyDirectory,
        checked: Callable[[str], None] = lambda how: None,
    ) -> None:
        self.sealer = sealer
        self.directory = directory
        self.checked = checked

    @classmethod
    def configured(
        cls,
        aws: AwsClients,
        settings: LabelingSettings,
        checked: Callable[[str], None] = lambda how: None,
    ) -> KeyCheck:
        """The check of a process's settings: its seal keys, its tasks table."""
        return cls(Sealer.configured(settings), KeyDirectory(aws, settings), checked)

    async def known(self, fields: Mapping[str, Any], key_id: str) -> KnownObject | None:
        """``fields``: where the seal is (the output, or the claim that kept it)."""
        known = self.sealer.open(fields, key_id) if self.sealer is not None else None
        if known is not None:
            self.checked("seal")
            return known
        self.checked("lookup")
        return await self.directory.lookup(key_id)


def _is_level(text: str) -> bool:
    """A level as the dispatcher writes it: 1-3 ASCII digits (``"²".isdigit()`` is true)."""
    return 1 <= len(text) <= 3 and text.isascii() and text.isdigit()


def _trace_text(context: Mapping[str, str] | None) -> str:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")) if context else ""


def _trace_context(text: str) -> dict[str, str] | None:
    """The trace context a sealed output carries, if any."""
    try:
        return trace_headers(json.loads(text)) if text else None
    except ValueError:
        return None
