"""Ground Truth's limits, each with its source, next to the code that depends on them."""

from __future__ import annotations

import re

# Label category configuration file quotas (SageMaker developer guide, "Label and label
# category attribute quotas").
MAX_LABELS = 30
MAX_LABEL_NAME = 16
MAX_ATTRIBUTES_PER_LABEL = 10
MAX_FRAME_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 16
MAX_ATTRIBUTE_DESCRIPTION = 128
MAX_ENUM_VALUES = 10
MAX_ENUM_VALUE = 16
LABEL_CATEGORY_DOCUMENT_VERSION = "2020-03-01"

# Streaming jobs, input de-duplication (developer guide, "Duplicate message handling"):
# the key name must match this pattern and be at most 140 characters; the id at most 1024.
DEDUP_KEY_NAME_PATTERN = re.compile(r"^[$a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_DEDUP_KEY_NAME = 140
MAX_DEDUP_KEY_ID = 1024
DEDUP_ATTRIBUTE = "dataset-objectid-attribute-name"

# CreateLabelingJob: job names up to 63 of [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_JOB_NAME = 63
# Ground Truth creates a streaming job's input queue as GroundTruth-<job name lowercased>
# (sms-streaming-create-job); SQS queue names are at most 80 characters, SNS topic names 256.
GT_QUEUE_PREFIX = "GroundTruth-"
MAX_QUEUE_NAME = 80
MAX_TOPIC_NAME = 256
# Video tracking/detection label attribute names must end in "-ref" (the SeqLabel file URI).
LABEL_ATTRIBUTE_SUFFIX = "-ref"
# LabelAttributeName: up to 127 of [a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}
LABEL_ATTRIBUTE_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}$")

# HumanTaskConfig bounds.
MIN_TASK_AVAILABILITY_SECONDS = 60
MAX_TASK_AVAILABILITY_SECONDS_PRIVATE = 30 * 24 * 3600
MIN_TASK_TIME_LIMIT_SECONDS = 30
# Video frame jobs: TaskTimeLimitInSeconds up to 30 days (botocore's SageMaker model, max
# 2592000; the guide's older "7 days" predates it).
MAX_VIDEO_TASK_TIME_LIMIT_SECONDS = 30 * 24 * 3600
MAX_CONCURRENT_TASKS = 5000
# MaxConcurrentTaskCount defaults to 1,000; more needs an AWS service quota raise
# (CreateLabelingJob API reference, HumanTaskConfig).
DEFAULT_MAX_CONCURRENT_TASKS = 1000
# Video frame object tracking/detection take exactly one worker per data object
# (sms-video-object-tracking, sms-video-object-detection).
VIDEO_WORKERS_PER_OBJECT = 1

# A streaming job's input queue drops an item not taken within 14 days (SQS retention).
INPUT_QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
# Expired objects come back with a failure-reason starting with this.
EXPIRED_REASON_PREFIX = "ClientError: Annotation tasks expired"
