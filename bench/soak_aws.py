"""The AWS side of the soak: streaming jobs stopped and re-created, output poison, what the
Ground Truth emulator counted and what the listener's SQS dead-letter queue holds."""

from __future__ import annotations

from collections import Counter

from bench.soak_verdict import POISON_MARKER, DeadLetter
from shared.aws import AwsClients
from shared.labeling.jobs import JobManager, JobRegistry
from shared.settings import Settings
from shared.workflows import load_catalog

# The listener's refusal reason (services/listener/trust.py); a redrive by SQS carries none.
REFUSED_REASON_ATTRIBUTE = "lava-refused-reason"
DEAD_OUTPUT_QUEUE = "gt-output-dead"


async def stop_job(aws: AwsClients, settings: Settings, name: str) -> None:
    """Stop a streaming job as an operator would (its open tasks are gone with it)."""
    await JobManager(aws, settings).stop(name)


async def recreate_job(aws: AwsClients, settings: Settings, name: str) -> int:
    """Create a stopped job again from the workflow catalog; its new generation."""
    definition = load_catalog(settings.labeling.workflows_file).jobs[name]
    created = await JobManager(aws, settings).create(
        name, definition.type, adjusts=definition.adjusts
    )
    return created.job.generation


async def poison_output_topic(aws: AwsClients, settings: Settings, job: str, marker: str) -> None:
    """Garbage on a job's output topic: the listener must dead-letter it with a reason."""
    found = await JobRegistry(aws, settings).get(job)
    if found is None:
        raise RuntimeError(f"no job named {job}")
    sns = await aws.sns()
    await sns.publish(TopicArn=found.output_topic_arn, Message=f"{POISON_MARKER} {marker}")


async def emulator_counters(aws: AwsClients, settings: Settings) -> Counter[str]:
    """The emulator's counters summed over every job (received, expired, live_duplicates...)."""
    total: Counter[str] = Counter()
    for job in await JobRegistry(aws, settings).list():
        total.update(job.counters)
    return total


async def take_sqs_dead_letters(aws: AwsClients, settings: Settings) -> list[DeadLetter]:
    """Everything in the listener's SQS dead-letter queue (read and deleted)."""
    sqs = await aws.sqs()
    name = settings.names.queue_url_name(DEAD_OUTPUT_QUEUE)
    url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    letters: list[DeadLetter] = []
    while True:
        got = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        messages = got.get("Messages", [])
        if not messages:
            return letters
        for message in messages:
            attribute = message.get("MessageAttributes", {}).get(REFUSED_REASON_ATTRIBUTE)
            reason = str(attribute.get("StringValue", "")) if attribute else ""
            letters.append(DeadLetter(name, reason, message.get("Body", "")))
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
