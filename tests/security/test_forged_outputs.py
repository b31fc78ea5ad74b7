"""Forged Ground Truth outputs against the real listener, SNS/SQS (moto) and broker.

Every attack is delivered to the listener's queue next to one genuine output: the genuine one
(signed by the local SNS stand-in, as SNS signs) becomes a LevelCompleted, each forged one is
moved to the SQS dead-letter queue with its reason, and nothing else reaches the bus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.testing.events import frames_ready
from services.listener import trust
from services.listener.service import build
from services.listener.trust import REASON_ATTRIBUTE, output_prefix
from shared import sns_signature
from shared.aws import AwsClients
from shared.bus import Bus
from shared.clock import FakeClock
from shared.events import LevelCompleted, decode_event
from shared.labeling.jobs import output_publisher
from shared.labeling.streaming_job import StreamingJob
from shared.settings import Settings
from shared.sns_sqs import queue_arn
from tests.support.broker import get_messages, wait_until
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, inputs
from tests.support.dispatch import make as make_dispatcher
from tests.support.services import running

pytestmark = pytest.mark.integration


def _output(job: StreamingJob, bucket: str, key: str, source: str, marker: str) -> dict[str, Any]:
    return {
        "source-ref": source,
        "dataset-objectid-attribute-name": "lava-dedup-id",
        "lava-dedup-id": key,
        "lava-marker": marker,
        job.label_attribute: f"{output_prefix(bucket, job)}{marker}/SeqLabel.json",
        f"{job.label_attribute}-metadata": {
            "job-name": f"labeling-job/{job.gt_name}",
            "human-annotated": "yes",
            "creation-date": "2026-05-15T08:01:16.000000",
            "type": "groundtruth/video-object-tracking",
            "class-map": {"0": "vehicle"},
        },
    }


ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem"


def _envelope(
    topic: str, message: dict[str, Any], cert_url: str, key: rsa.RSAPrivateKey | None
) -> dict[str, str]:
    """An SNS Notification envelope in the real shape, signed with ``key`` (or a fake)."""
    envelope = {
        "Type": "Notification",
        "MessageId": "00000000-0000-0000-0000-000000000000",
        "TopicArn": topic,
        "Message": json.dumps(message),
        "Timestamp": "2026-12-06T10:00:00.000Z",
        "SignatureVersion": "2",
        "SigningCertURL": cert_url,
    }
    envelope["Signature"] = sns_signature.sign(envelope, key) if key else "RVhBTVBMRQ=="
    return envelope


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_forged_outputs_are_refused_and_the_genuine_one_passes(
    aws: AwsClients, settings: Settings, bus: Bus
) -> None:
    s = dispatch_settings(
        settings,
        listener__wait_seconds=1,
        listener__visibility_timeout_seconds=1,
        listener__refresh_seconds=0.3,
    )
    jobs = await create_jobs(aws, s)
    dispatcher = make_dispatcher(aws, s, FakeClock(), Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    job = jobs["VOTVehicle"]
    other = next(j for name, j in jobs.items() if name != "VOTVehicle")
    (sent,) = await inputs(aws, job)
    key, source, bucket = sent["lava-dedup-id"], sent["source-ref"], s.names.bucket
    sns, sqs = await aws.sns(), await aws.sqs()

    def forged(marker: str, **changes: Any) -> dict[str, Any]:
        body = _output(job, bucket, key, source, marker)
        body.update(changes)
        return body

    async def via(topic: str, body: dict[str, Any] | str) -> None:
        message = body if isinstance(body, str) else json.dumps(body)
        await sns.publish(TopicArn=topic, Message=message)

    attr = job.label_attribute
    expected = {
        "attack-evil-topic": "is not the output topic of a registered job",
        "attack-no-topic": "no TopicArn",
        "attack-raw-body": "not an SNS Notification envelope",
        "attack-unsigned": "SNS signature: the signature does not verify",
        "attack-own-key": "SNS signature: the signature does not verify",
        "attack-own-cert-url": "SigningCertURL 'https://attacker.example/",
        "attack-http-cert-url": "SigningCertURL 'http://sns.",
        "attack-other-job": "names job 'VOTVehicle' but the output came from the topic of",
        "attack-foreign-bucket": "is not under the job's output prefix",
        "attack-other-prefix": "is not under the job's output prefix",
        "attack-traversal": "is not under the job's output prefix",
        "attack-nan": "non-finite",
        "attack-deep": "nests deeper",
    }
    async with running(build, s, "listener", None):
        # 1. a topic the attacker owns, subscribed to our queue (real SNS would also be stopped
        #    by the queue policy; moto does not enforce it, so the listener must)
        queue_url = (await sqs.get_queue_url(QueueName=s.names.queue_url_name("gt-output")))[
            "QueueUrl"
        ]
        evil = (await sns.create_topic(Name=s.names.topic("Evil-output")))["TopicArn"]
        await sns.subscribe(TopicArn=evil, Protocol="sqs", Endpoint=await queue_arn(sqs, queue_url))
        await via(evil, forged("attack-evil-topic"))
        # 2. straight into the queue, no SNS envelope
        await sqs.send_message(
            QueueUrl=queue_url, MessageBody=json.dumps(forged("attack-no-topic"))
        )
        # 2b. straight into the queue, naming the registered job's output topic (issue 24, 1)
        raw = {**forged("attack-raw-body"), "TopicArn": job.output_topic_arn}
        await sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(raw))
        # 2c-2f. SNS envelopes SNS never signed, sent straight into the queue
        for marker, url, key_used in [
            ("attack-unsigned", CERT_URL, None),
            ("attack-own-key", CERT_URL, ATTACKER_KEY),
            ("attack-own-cert-url", "https://attacker.example/cert.pem", ATTACKER_KEY),
            ("attack-http-cert-url", CERT_URL.replace("https", "http"), ATTACKER_KEY),
        ]:
            envelope = _envelope(job.output_topic_arn, forged(marker), url, key_used)
            await sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(envelope))
        # 3. a genuine key delivered through another registered job's topic
        await via(other.output_topic_arn, _output(other, bucket, key, source, "attack-other-job"))
        # 4-6. label URIs post-processing must never read
        await via(
            job.output_topic_arn,
            forged(
                "attack-foreign-bucket",
                **{attr: f"s3://someone-else/gt-output/{job.gt_name}/x/SeqLabel.json"},
            ),
        )
        await via(
            job.output_topic_arn,
            forged("attack-other-prefix", **{attr: f"s3://{bucket}/labels/victim.json"}),
        )
        await via(
            job.output_topic_arn,
            forged(
                "attack-traversal",
                **{attr: f"{output_prefix(bucket, job)}../../labels/victim.json"},
            ),
        )
        # 7-8. numbers and nesting the parsers would choke on
        nan = json.dumps(forged("attack-nan")).replace('"yes"', "NaN", 1)
        await via(job.output_topic_arn, nan)
        await via(job.output_topic_arn, forged("attack-deep", extra=_nested(40)))
        # the genuine output, last
        await via(job.output_topic_arn, _output(job, bucket, key, source, "genuine"))

        (event,) = [
            decode_event(m.body)
            for m in await get_messages(s, s.names.queue("dispatcher"), 1, timeout=30)
        ]
        assert isinstance(event.payload, LevelCompleted)
        assert event.payload.label_uri == f"{output_prefix(bucket, job)}genuine/SeqLabel.json"

        dead_url = (await sqs.get_queue_url(QueueName=s.names.queue_url_name("gt-output-dead")))[
            "QueueUrl"
        ]
        refused: dict[str, str] = {}

        async def all_refused() -> bool:
            got = await sqs.receive_message(
                QueueUrl=dead_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            for message in got.get("Messages", []):
                marker = next((m for m in expected if m in message["Body"]), "?")
                refused[marker] = message["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
                await sqs.delete_message(QueueUrl=dead_url, ReceiptHandle=message["ReceiptHandle"])
            return len(refused) >= len(expected)

        await wait_until(all_refused, timeout=30, interval=0.2)
    for marker, reason in expected.items():
        assert reason in refused[marker], (marker, refused[marker])
    # nothing forged reached the bus
    assert await get_messages(s, s.names.queue("dispatcher"), 1, timeout=0.5) == []


async def test_queue_and_topic_policies_name_exact_principals(
    aws: AwsClients, settings: Settings, bus: Bus
) -> None:
    s = dispatch_settings(settings, listener__wait_seconds=1, listener__refresh_seconds=0.3)
    jobs = await create_jobs(aws, s)
    sns, sqs = await aws.sns(), await aws.sqs()
    topics = sorted(j.output_topic_arn for j in jobs.values())
    policy: dict[str, Any] = {}
    async with running(build, s, "listener", None):
        url = (await sqs.get_queue_url(QueueName=s.names.queue_url_name("gt-output")))["QueueUrl"]

        async def names_every_topic() -> bool:
            # the listener widens the policy as it subscribes: wait for the last topic, not
            # for a moment (read at once, a loaded run saw a policy of fewer topics)
            attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
            policy.update(json.loads(attrs.get("Attributes", {}).get("Policy", "{}")))
            return all(t in json.dumps(policy) for t in topics)

        await wait_until(names_every_topic, 120, interval=0.3)
    deny, allowed = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"]["ArnNotEquals"]["aws:SourceArn"] == sorted(
        j.output_topic_arn for j in jobs.values()
    )
    condition = allowed["Condition"]
    assert condition["ArnEquals"]["aws:SourceArn"] == sorted(
        j.output_topic_arn for j in jobs.values()
    )
    assert "*" not in json.dumps(condition["ArnEquals"])
    assert condition["StringEquals"]["aws:SourceAccount"] == s.aws.account
    for job in jobs.values():
        topic = await sns.get_topic_attributes(TopicArn=job.output_topic_arn)
        statements = json.loads(topic["Attributes"]["Policy"])["Statement"]
        publish = [st for st in statements if "SNS:Publish" in st["Action"]]
        publishers = [st["Principal"]["AWS"] for st in publish if st["Effect"] == "Allow"]
        assert publishers == [output_publisher("emulator", s)]
        (deny,) = [st for st in publish if st["Effect"] == "Deny"]
        assert deny["Principal"] == "*"
        assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": publishers[0]}}
        (fixed,) = [st for st in statements if st.get("Sid") == "FixedAtCreation"]
        assert fixed["Effect"] == "Deny" and fixed["Principal"] == "*"
        assert "SNS:SetTopicAttributes" in fixed["Action"]
        assert json.loads(topic["Attributes"]["Policy"]) and job.output_topic_arn in str(fixed)


ROOT = Path(__file__).resolve().parents[2]


def test_no_component_may_change_a_topic_policy() -> None:
    """A stolen role (the internet-facing control service's, say) cannot open an output topic
    to other publishers: topics get their policy at creation and nothing grants changing it."""
    grants = {
        path.name: json.dumps(json.loads(path.read_text()))
        for path in (ROOT / "deploy" / "iam").glob("*.json")
    }
    for action in ("sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission"):
        assert [name for name, text in grants.items() if action in text] == []


@pytest.mark.parametrize("aws_backend", ["memory"])
async def test_outputs_of_another_labeling_job_or_topic_are_not_believed(
    policy_aws: AwsClients, policy_settings: Settings
) -> None:
    """Two ways a stolen control role could get SNS to sign forged outputs, both refused: a
    Ground Truth job of its own making whose output topic is a victim job's (its outputs name
    that other job), and a job entry pointed at a topic of its own (not the one its name
    derives, so it is never listened to)."""
    jobs = await create_jobs(policy_aws, policy_settings)
    job = jobs["VOTVehicle"]
    trust.check_job_name(job, job.gt_name)  # the job's own output passes
    with pytest.raises(trust.Refused, match="names labeling job 'rogue'"):
        trust.check_job_name(job, "rogue")
    with pytest.raises(trust.Refused, match="names labeling job None"):
        trust.check_job_name(job, None)
    s = policy_settings
    own = s.names.topic("VOTVehicle-output")
    assert trust.own_output_topic(job, s.aws.region, s.aws.account, own)
    for arn in (
        job.output_topic_arn.replace("VOTVehicle-output", "x-output"),  # another topic of ours
        job.output_topic_arn.replace(s.aws.account, "999999999999"),  # the same name elsewhere
    ):
        moved = job.model_copy(update={"output_topic_arn": arn})
        assert not trust.own_output_topic(moved, s.aws.region, s.aws.account, own)
