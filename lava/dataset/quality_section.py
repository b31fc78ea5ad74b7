"""The dataset report's label-quality section: gold scores and review agreement per worker
(pseudonyms: a report travels further than the control API), with charts (docs/quality.md)."""

from __future__ import annotations

from pathlib import Path

from shared.quality.report import QualityReport, Rate, Row


def _chart(path: Path, title: str, series: dict[str, dict[str, float]]) -> None:
    """Grouped bars: one group per worker, one bar per metric (0..1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = list(series)
    metrics = sorted({m for values in series.values() for m in values})
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(workers) + 2), 3.4))
    width = 0.8 / max(1, len(metrics))
    for i, metric in enumerate(metrics):
        ax.bar(
            [x + i * width for x in range(len(workers))],
            [series[w].get(metric, 0.0) for w in workers],
            width,
            label=metric,
        )
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(workers))])
    ax.set_xticklabels(workers, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rate(rate: Rate) -> str:
    if rate.value is None:
        return "-"
    return f"{rate.value:.2f} [{rate.low:.2f}-{rate.high:.2f}] (n={rate.n})"


def _gold_rows(rows: list[Row]) -> list[str]:
    lines = [
        "| worker | gold tasks | precision | recall | attribute accuracy | MOTA | IDF1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = r.gold
        mota = "-" if g.mota is None else f"{g.mota:.2f}"
        idf1 = "-" if g.idf1 is None else f"{g.idf1:.2f}"
        lines.append(
            f"| {r.name} | {g.gold_tasks} | {_rate(g.precision)} | {_rate(g.recall)} | "
            f"{_rate(g.attribute_accuracy)} | {mota} | {idf1} |"
        )
    return lines


def quality_section(found: QualityReport, out: Path) -> list[str]:
    lines = [
        "",
        "## Label quality",
        "",
        f"{found.tasks} task(s) finalized in the window, {found.gold_tasks} of them gold copies. "
        "Proportions: value [95% Wilson interval] (n instances).",
    ]
    gold = [r for r in found.workers if r.gold.gold_tasks]
    if gold:
        _chart(
            out / "quality-gold.png",
            "Gold clips per worker",
            {
                r.name: {
                    "precision": r.gold.precision.value or 0.0,
                    "recall": r.gold.recall.value or 0.0,
                    "attribute accuracy": r.gold.attribute_accuracy.value or 0.0,
                }
                for r in gold
            },
        )
        lines += ["", "![gold scores per worker](quality-gold.png)", "", *_gold_rows(gold)]
    reviewed = [r for r in found.workers if r.agreement.objects]
    if reviewed:
        _chart(
            out / "quality-agreement.png",
            "What review changed, per level-1 worker",
            {
                r.name: {
                    "kept": r.agreement.kept.value or 0.0,
                    "moved": r.agreement.moved.value or 0.0,
                    "deleted": r.agreement.deleted.value or 0.0,
                }
                for r in reviewed
            },
        )
        lines += ["", "![review agreement per worker](quality-agreement.png)"]
    if not gold and not reviewed:
        lines += ["", "No gold copies or reviewed tasks in the window."]
    return lines
