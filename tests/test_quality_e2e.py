"""Label quality end to end on the realistic Ground Truth emulator: two simulated workers of
different skill, gold clips mixed in at 20 %, the report separating the two workers.

Tolerance of the agreement check (docs/quality.md): the emulator decides a miss per track,
so with a few dozen tracks the share of added objects is within 0.2 of the injected miss
share; a careful worker's labels are all kept.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.aws import AwsClients
from shared.dataset.index import DatasetIndex
from shared.operations.quality import add_gold, quality_report
from shared.quality.report import UNKNOWN, QualityReport, Row
from tests.support.e2e import make_clips, pipeline, upload, wait_for_clips

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CAREFUL = {"worker_id": "careful", "box_jitter": 0.0, "miss_share": 0.0}
NOISY = {
    "worker_id": "noisy",
    "box_jitter": 4.0,
    "miss_share": 0.35,
    "wrong_attribute_share": 0.6,
}
MISS_TOLERANCE = 0.2
# Two tracked workflows: each real task may be followed by a gold copy.
WORKFLOWS = ["vehicles", "pedestrians"]


def _worker(report: QualityReport, name: str) -> Row:
    return next(r for r in report.workers if r.name == name)


def _gold_env() -> dict[str, str]:
    return {
        "LAVA_EMULATOR__WORKERS": json.dumps([CAREFUL, NOISY]),
        "LAVA_QUALITY__GOLD_RATE": "0.2",
        "LAVA_QUALITY__GOLD_REFRESH_SECONDS": "0.5",
    }


async def test_gold_clips_rank_the_noisier_worker_below(tmp_path: Path, rabbitmq: str) -> None:
    gold_clips, real_clips = make_clips(tmp_path, 2, start_seed=40), make_clips(tmp_path, 8)
    async with pipeline(tmp_path, adjust_fix_share=1.0, extra_env=_gold_env()) as run:
        settings = run.settings
        assert settings is not None
        gold_ids = await upload(settings, gold_clips, WORKFLOWS)
        await wait_for_clips(settings, gold_ids)
        async with AwsClients(settings) as aws:
            for clip_id in gold_ids:
                for workflow in WORKFLOWS:
                    await add_gold(aws, settings, clip_id, workflow, "sidecar")
        real_ids = await upload(settings, real_clips, WORKFLOWS)
        await wait_for_clips(settings, real_ids)
        async with AwsClients(settings) as aws:
            since = datetime.now(UTC) - timedelta(hours=1)
            found = await quality_report(aws, settings, since, reveal=True)
            indexed = [e.clip_id for e in await DatasetIndex(aws, settings).query({})]
    assert found.gold_tasks >= 2, found
    careful, noisy = _worker(found, "careful"), _worker(found, "noisy")
    for row in (careful, noisy):
        assert row.gold.gold_tasks >= 1, (row.name, found)
    for metric in ("precision", "recall", "attribute_accuracy"):
        low, high = getattr(noisy.gold, metric).value, getattr(careful.gold, metric).value
        assert low is not None and high is not None and low < high, (metric, noisy, careful)
    assert noisy.gold.mota is not None and careful.gold.mota is not None
    assert noisy.gold.mota < careful.gold.mota
    assert noisy.gold.idf1 is not None and careful.gold.idf1 is not None
    assert noisy.gold.idf1 < careful.gold.idf1
    # agreement: the adjustment corrects every level-1 mistake (adjust_fix_share 1.0)
    assert careful.agreement.kept.value == 1.0
    added = noisy.agreement.added / (noisy.agreement.objects + noisy.agreement.added)
    assert abs(added - NOISY["miss_share"]) <= MISS_TOLERANCE, noisy.agreement
    assert (noisy.agreement.attributes_flipped.value or 0) > 0
    # gold copies never enter the dataset: each clip once, no made-up clip ids
    assert sorted(indexed) == sorted(gold_ids + real_ids)
    # who did it: every output of both levels has a worker and a time spent
    assert UNKNOWN not in {r.name for r in found.workers}
    assert sum(r.tasks for r in found.workers) == 2 * found.tasks
    assert careful.seconds_per_task is not None and careful.tasks_per_hour is not None
