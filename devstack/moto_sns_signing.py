"""The local SNS stand-in signs like SNS: every notification moto delivers, with the local key.

moto 5 builds each SNS -> SQS (and HTTP) envelope in ``Subscription.get_post_data`` and signs it
with a fresh key per subscription, leaving ``Subject`` out of the string to sign. Here the
envelope is rebuilt in SNS's documented shape and signed with :mod:`devstack.local_sns_key` (the
topic's ``SignatureVersion``, 1 = SHA1 by default as in SNS, 2 = SHA256), so the listener checks
a local notification exactly as it checks one from AWS, against a certificate it trusts.
Installed by :mod:`devstack.moto_server` and by the in-process AWS of the tests.
"""

from __future__ import annotations

from typing import Any

from devstack.local_sns_key import LocalSigningKey
from shared import sns_signature

_installed: list[LocalSigningKey] = []


def envelope(
    subscription: Any, message: str, message_id: str, subject: str | None
) -> dict[str, Any]:
    """The unsigned Notification envelope of one delivery (SNS's field names)."""
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    topic = subscription.topic
    region = topic.sns_backend.region_name
    body: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic.arn,
        "Message": message,
        "Timestamp": iso_8601_datetime_with_milliseconds(),
        "SignatureVersion": str(getattr(topic, "SignatureVersion", "1")),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-lava-local.pem",
        "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
    }
    if subject:
        body["Subject"] = subject
    return body


def install(key: LocalSigningKey) -> None:
    """Make moto sign every notification with ``key`` (idempotent; the latest key wins)."""
    from moto.sns.models import Subscription

    _installed[:] = [key]

    def get_post_data(
        self: Any,
        message: str,
        message_id: str,
        subject: str | None,
        message_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = envelope(self, message, message_id, subject)
        body["Signature"] = sns_signature.sign(body, _installed[0].key, body["SignatureVersion"])
        if message_attributes:
            body["MessageAttributes"] = message_attributes
        return body

    Subscription.get_post_data = get_post_data  # type: ignore[method-assign]
