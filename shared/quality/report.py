"""Quality records summed into the tables `lava quality`, `GET /v1/quality`, the dashboard and
the dataset report show: per worker, per job, per class (docs/quality.md explains each number).

Workers appear as pseudonyms unless ``reveal`` (operators and admins only). Every proportion
carries its ``n`` and a 95 % Wilson interval; MOTA and IDF1 are recomputed from summed parts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from shared.quality.agreement import Agreement
from shared.quality.confidence import wilson
from shared.quality.gold import GoldCounts
from shared.quality.records import QualityRecord
from shared.quality.workers import WorkerIdentity, pseudonym

UNKNOWN = "(unknown)"


class Rate(BaseModel):
    """A proportion with its sample size and 95 % Wilson interval."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    n: int
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, successes: int, n: int) -> Rate:
        interval = wilson(successes, n)
        return cls(
            value=round(successes / n, 4) if n else None,
            n=n,
            low=round(interval[0], 4) if interval else None,
            high=round(interval[1], 4) if interval else None,
        )


class GoldRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gold_tasks: int = 0
    precision: Rate = Rate(value=None, n=0)
    recall: Rate = Rate(value=None, n=0)
    attribute_accuracy: Rate = Rate(value=None, n=0)
    mota: float | None = None
    idf1: float | None = None

    @classmethod
    def of(cls, counts: GoldCounts, tasks: int) -> GoldRow:
        return cls(
            gold_tasks=tasks,
            precision=Rate.of(counts.matched, counts.labeled),
            recall=Rate.of(counts.matched, counts.truth),
            attribute_accuracy=Rate.of(counts.attributes_right, counts.attributes),
            mota=_round(counts.mota),
            idf1=_round(counts.idf1),
        )


class AgreementRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objects: int = 0
    kept: Rate = Rate(value=None, n=0)
    moved: Rate = Rate(value=None, n=0)
    relabelled: Rate = Rate(value=None, n=0)
    deleted: Rate = Rate(value=None, n=0)
    attributes_flipped: Rate = Rate(value=None, n=0)
    added: int = 0
    mean_iou_shift: float | None = None

    @classmethod
    def of(cls, a: Agreement) -> AgreementRow:
        return cls(
            objects=a.objects,
            kept=Rate.of(a.kept, a.objects),
            moved=Rate.of(a.moved, a.objects),
            relabelled=Rate.of(a.relabelled, a.objects),
            deleted=Rate.of(a.deleted, a.objects),
            attributes_flipped=Rate.of(a.attributes_flipped, a.attributes),
            added=a.added,
            mean_iou_shift=_round(a.iou_shift_sum / a.boxes_compared if a.boxes_compared else None),
        )


class Row(BaseModel):
    """One worker, job or class."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tasks: int = 0
    seconds_per_task: float | None = None
    tasks_per_hour: float | None = None
    gold: GoldRow = GoldRow()
    agreement: AgreementRow = AgreementRow()


class QualityReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: int
    gold_tasks: int
    workers: list[Row] = Field(default_factory=list)
    jobs: list[Row] = Field(default_factory=list)
    classes: list[Row] = Field(default_factory=list)


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


class _Sums:
    def __init__(self) -> None:
        self.tasks = 0
        self.seconds: list[float] = []
        self.gold = GoldCounts()
        self.gold_tasks: set[str] = set()
        self.agreement = Agreement()

    def row(self, name: str) -> Row:
        mean = sum(self.seconds) / len(self.seconds) if self.seconds else None
        return Row(
            name=name,
            tasks=self.tasks,
            seconds_per_task=_round(mean),
            tasks_per_hour=_round(3600 / mean) if mean else None,
            gold=GoldRow.of(self.gold, len(self.gold_tasks)),
            agreement=AgreementRow.of(self.agreement),
        )


def report(
    records: Iterable[QualityRecord], pseudonym_key: str, reveal: bool = False
) -> QualityReport:
    workers: dict[str, _Sums] = defaultdict(_Sums)
    jobs: dict[str, _Sums] = defaultdict(_Sums)
    classes: dict[str, _Sums] = defaultdict(_Sums)

    def name(worker: WorkerIdentity | None) -> str:
        if worker is None:
            return UNKNOWN
        return worker.worker_id if reveal else pseudonym(worker, pseudonym_key)

    tasks = gold_tasks = 0
    for record in records:
        tasks += 1
        gold_tasks += record.gold
        for work in record.levels:
            for sums in (workers[name(work.worker)], jobs[work.job]):
                sums.tasks += 1
                if work.worker is not None and work.worker.time_spent_seconds is not None:
                    sums.seconds.append(work.worker.time_spent_seconds)
        for result in record.gold_results:
            who = name(record.worker_of(result.job))
            for cls, counts in result.per_class.items():
                for sums in (workers[who], jobs[result.job], classes[cls]):
                    sums.gold = sums.gold.plus(counts)
                    sums.gold_tasks.add(record.task_id)
        for clip in record.agreement:
            who = name(record.worker_of(clip.job))  # the adjusted level's worker is judged
            for cls, changes in clip.per_class.items():
                for sums in (workers[who], jobs[clip.job], classes[cls]):
                    sums.agreement = sums.agreement.plus(changes)
    return QualityReport(
        tasks=tasks,
        gold_tasks=gold_tasks,
        workers=[s.row(n) for n, s in sorted(workers.items())],
        jobs=[s.row(n) for n, s in sorted(jobs.items())],
        classes=[s.row(n) for n, s in sorted(classes.items())],
    )
