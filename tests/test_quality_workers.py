"""Who labeled a data object: Ground Truth's worker-response files, Label Studio's annotator."""

from __future__ import annotations

import random

from emulators.workforce import SimulatedWorker, pick, worker_response
from shared.quality.workers import (
    from_labelstudio_annotation,
    from_worker_response,
    pseudonym,
    worker_response_location,
)

# sms-data-output, "Worker Metadata" (a Cognito private workforce)
GUIDE_EXAMPLE = {
    "answers": [
        {
            "submissionTime": "2020-12-28T18:59:58.321Z",
            "acceptanceTime": "2020-12-28T18:59:15.191Z",
            "timeSpentInSeconds": 40.543,
            "workerId": "a12b3cdefg4h5i67",
            "workerMetadata": {
                "identityData": {
                    "identityProviderType": "Cognito",
                    "issuer": "https://cognito-idp.aws-region.amazonaws.com/aws-region_123456789",
                    "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                }
            },
        }
    ]
}


def test_the_guides_worker_response_gives_id_sub_and_timing() -> None:
    worker = from_worker_response(GUIDE_EXAMPLE)
    assert worker.worker_id == "a12b3cdefg4h5i67"
    assert worker.sub == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert worker.time_spent_seconds == 40.543
    assert worker.accepted_at is not None and worker.accepted_at.second == 15


def test_the_emulator_writes_what_the_guide_shows() -> None:
    emulated = worker_response(SimulatedWorker(worker_id="w1"), 1_700_000_000.0, 1_700_000_040.5)
    answer = emulated["answers"][0]
    guide = GUIDE_EXAMPLE["answers"][0]
    assert set(answer) == set(guide)
    assert set(answer["workerMetadata"]["identityData"]) == set(
        guide["workerMetadata"]["identityData"]  # type: ignore[index]
    )
    assert answer["submissionTime"].endswith("Z") and len(answer["submissionTime"]) == 24
    assert from_worker_response(emulated).time_spent_seconds == 40.5


def test_the_worker_response_folder_follows_from_the_label_uri() -> None:
    key = "out/job-a/annotations/consolidated-annotation/output/7/SeqLabel.json"
    assert worker_response_location(key) == ("out/job-a/annotations/worker-response/", "7")
    assert worker_response_location("labels/clip.json") is None


def test_label_studio_annotator_is_completed_by() -> None:
    worker = from_labelstudio_annotation({"completed_by": 3, "lead_time": 12.5})
    assert worker is not None and (worker.worker_id, worker.time_spent_seconds) == ("3", 12.5)
    assert from_labelstudio_annotation({"completed_by": {"id": 4}}) is not None
    assert from_labelstudio_annotation({}) is None


def test_a_pseudonym_is_stable_and_hides_the_id() -> None:
    assert pseudonym("a12b3cdefg4h5i67", "k") == pseudonym("a12b3cdefg4h5i67", "k")
    assert pseudonym("a12b3cdefg4h5i67", "k") != pseudonym("a12b3cdefg4h5i67", "other")
    assert "a12b" not in pseudonym("a12b3cdefg4h5i67", "k")


def test_workers_are_drawn_by_weight_deterministically() -> None:
    workers = [SimulatedWorker(worker_id="a", weight=1), SimulatedWorker(worker_id="b", weight=3)]
    draws = [pick(workers, random.Random(f"7/{n}")).worker_id for n in range(400)]
    assert draws == [pick(workers, random.Random(f"7/{n}")).worker_id for n in range(400)]
    assert 250 < draws.count("b") < 350
