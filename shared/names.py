"""Every broker and AWS resource name, derived from one namespace prefix.

Test runs and environments pick different prefixes, so they never see each other's messages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Namespace:
    prefix: str
    # The bucket is a setting (Settings.bucket, default <prefix>-<account>-<region>): a bare
    # <prefix>-data is global and guessable, so anyone could own it.
    bucket_name: str = ""

    # --- RabbitMQ ---------------------------------------------------------------------------
    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    def queue(self, consumer: str) -> str:
        return f"{self.prefix}.{consumer}"

    def dead_letter_exchange(self, consumer: str) -> str:
        return f"{self.prefix}.{consumer}.dlx"

    def dead_letter_queue(self, consumer: str) -> str:
        return f"{self.prefix}.{consumer}.dead"

    # --- AWS --------------------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        # S3: 3-63 chars, lowercase letters, digits, hyphens.
        return self.bucket_name or f"{self.prefix}-data"

    def table(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def topic(self, name: str) -> str:
        # SNS topic names: up to 256 of [A-Za-z0-9_-].
        return f"{self.prefix}-{name}"

    def queue_url_name(self, name: str) -> str:
        """An SQS queue name (80 chars of [A-Za-z0-9_-])."""
        return f"{self.prefix}-{name}"

    def owns(self, name: str) -> bool:
        """Whether a broker or AWS name belongs to this namespace."""
        return name.startswith((f"{self.prefix}.", f"{self.prefix}-"))
