"""The simulated workforce shared by both emulators: workers of different skill.

Each simulated worker id has its own box noise, miss rate and attribute error rate
(``LAVA_EMULATOR__WORKERS``); which worker takes a task is drawn from a generator seeded by the
task, so a run is the same whatever order tasks arrive in. With no workers configured, one
worker (``emulated-worker-1``) labels with the global noise settings, as before.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from emulators.groundtruth.labels import Noise

# Fixed, so a worker has the same identity-provider ``sub`` in every run.
_SUB_NAMESPACE = uuid.UUID("0b6a3f4e-2f5d-4c1e-8a57-64f1d0c3e9b2")
# What a Cognito-backed private workforce's worker-response shows (sms-data-output).
EMULATED_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_emulated"


class SimulatedWorker(BaseModel):
    """One simulated worker and how well they label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_id: str = Field(
        min_length=1, max_length=64, description="The id the backend reports for this worker."
    )
    box_jitter: float = Field(0.0, ge=0, description="Max pixels a box edge is moved.")
    miss_share: float = Field(0.0, ge=0, le=1, description="Share of objects left out.")
    wrong_attribute_share: float = Field(
        0.0, ge=0, le=1, description="Share of objects with a wrong attribute."
    )
    weight: float = Field(1.0, gt=0, description="Relative share of the tasks this worker takes.")
    adjusts: bool = Field(
        False, description="Works on adjustment jobs (a reviewer) instead of first-level ones."
    )

    @property
    def noise(self) -> Noise:
        return Noise(self.box_jitter, self.miss_share, self.wrong_attribute_share)

    @property
    def sub(self) -> str:
        """The identity provider's subject of this worker (stable, a UUID as Cognito's is)."""
        return str(uuid.uuid5(_SUB_NAMESPACE, self.worker_id))


# Who reviews when no configured worker adjusts: the adjustment's skill is adjust_fix_share.
DEFAULT_REVIEWER = SimulatedWorker(worker_id="emulated-reviewer-1", adjusts=True)


def pick(
    workers: Sequence[SimulatedWorker], rng: random.Random, adjusting: bool = False
) -> SimulatedWorker:
    """The worker who takes a task - a first-level worker, or a reviewer for an adjustment
    job - in proportion to the workers' weights."""
    team = [w for w in workers if w.adjusts == adjusting]
    if not team:
        return DEFAULT_REVIEWER if adjusting else SimulatedWorker(worker_id="emulated-worker-1")
    return rng.choices(team, weights=[w.weight for w in team])[0]


def _stamp(at: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` as sms-data-output shows it."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def worker_response(
    worker: SimulatedWorker, accepted_at: float, submitted_at: float
) -> dict[str, Any]:
    """One Ground Truth worker-response file (sms-data-output, "Worker Metadata"): the fields
    the guide shows; the answer itself is in the consolidated label, which is what we read."""
    return {
        "answers": [
            {
                "acceptanceTime": _stamp(accepted_at),
                "submissionTime": _stamp(submitted_at),
                "timeSpentInSeconds": round(max(0.0, submitted_at - accepted_at), 3),
                "workerId": worker.worker_id,
                "workerMetadata": {
                    "identityData": {
                        "identityProviderType": "Cognito",
                        "issuer": EMULATED_ISSUER,
                        "sub": worker.sub,
                    }
                },
            }
        ]
    }


def response_file_name(submitted_at: float) -> str:
    """Ground Truth names each response by its time (sms-data-output: "timestamped")."""
    return datetime.fromtimestamp(submitted_at, UTC).strftime("%Y-%m-%d_%H:%M:%S.%f") + ".json"
