"""`lava dataset report`: a Markdown page with PNG charts, read before anyone trains on it."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from lava.dataset.quality_section import quality_section
from services.postproc.summary import ClipSummary
from shared.dataset.index import IndexEntry
from shared.quality.report import QualityReport

CHARTED_ATTRIBUTES = (
    "vehicle.type",
    "vehicle.occlusion",
    "pedestrian.occlusion",
    "traffic_light.state",
    "traffic_light.is_front",
    "traffic_sign.type",
    "traffic_sign.is_front",
    "lane.lane_type",
    "lane.lane_style",
    "lane.lane_direction",
)


def _bar(path: Path, title: str, counts: Mapping[str, float], xlabel: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(counts)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.2))
    ax.bar(range(len(names)), [counts[n] for n in names], color="#3b6ea8")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grouped(path: Path, title: str, groups: Mapping[str, Mapping[str, int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ["added", "removed", "moved", "attributes_changed"]
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.4))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        ax.bar(
            [x + i * width for x in range(len(names))],
            [groups[n].get(kind, 0) for n in names],
            width,
            label=kind.replace("_", " "),
        )
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(counts: Mapping[str, float], header: tuple[str, str]) -> str:
    rows = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    rows += [f"| {k} | {v:g} |" for k, v in counts.items()]
    return "\n".join(rows)


def write_report(
    entries: Sequence[IndexEntry],
    summaries: Sequence[ClipSummary],
    out: Path,
    quality: QualityReport | None = None,
) -> Path:
    """``report.md`` and its PNG charts in ``out``: one section per question a reader asks."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# LAVA dataset report", "", *_overview(entries)]
    if not entries:
        lines.append("No completed clips match.")
    else:
        lines += _clips_by_attribute(entries, out)
        lines += _objects(entries, out)
        lines += _attribute_distributions(summaries, out)
        lines += _adjustment_changes(summaries, out)
        lines += _clips_to_look_at(entries)
    if quality is not None:
        lines += quality_section(quality, out)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _class_counts(entries: Sequence[IndexEntry]) -> tuple[Counter[str], Counter[str]]:
    objects: Counter[str] = Counter()
    tracks: Counter[str] = Counter()
    for entry in entries:
        objects.update(entry.objects_per_class)
        tracks.update(entry.tracks_per_class)
    return objects, tracks


def _overview(entries: Sequence[IndexEntry]) -> list[str]:
    objects, tracks = _class_counts(entries)
    frames = sum(e.frames for e in entries)
    return [
        f"- clips: **{len(entries)}**, frames: **{frames}**, objects: **{sum(objects.values())}**, "
        f"tracks: **{sum(tracks.values())}**",
        f"- clips with validation warnings: {sum(1 for e in entries if e.warnings)} "
        f"({sum(e.warnings for e in entries)} warnings)",
        "",
    ]


def _clips_by_attribute(entries: Sequence[IndexEntry], out: Path) -> list[str]:
    lines: list[str] = []
    for attribute in ("weather", "time_of_day", "scene"):
        ordered = dict(Counter(getattr(e, attribute) for e in entries).most_common())
        image = f"clips_by_{attribute}.png"
        title = attribute.replace("_", " ")
        _bar(out / image, f"Clips by {title}", ordered)
        lines += [f"## Clips by {title}", "", f"![]({image})", ""]
        lines += [_table(ordered, (attribute, "clips")), ""]
    return lines


def _objects(entries: Sequence[IndexEntry], out: Path) -> list[str]:
    objects, tracks = _class_counts(entries)
    ordered = dict(objects.most_common())
    _bar(out / "objects_per_class.png", "Objects per class", ordered)
    return [
        "## Objects per class",
        "",
        "![](objects_per_class.png)",
        "",
        _table(ordered, ("class", "objects")),
        "",
        _table(dict(tracks.most_common()), ("class", "unique tracks")),
        "",
    ]


def _attribute_distributions(summaries: Sequence[ClipSummary], out: Path) -> list[str]:
    distributions: dict[str, Counter[str]] = defaultdict(Counter)
    for summary in summaries:
        for key, counts in summary.attributes.items():
            distributions[key].update(counts)
    lines = ["## Attribute distributions", ""]
    for key in CHARTED_ATTRIBUTES:
        if key in distributions:
            image = f"attr_{key.replace('.', '_')}.png"
            _bar(out / image, key, dict(distributions[key].most_common()))
            lines += [f"### {key}", "", f"![]({image})", ""]
    return lines


def _adjustment_changes(summaries: Sequence[ClipSummary], out: Path) -> list[str]:
    changes: dict[str, Counter[str]] = defaultdict(Counter)
    for summary in summaries:
        for diff in summary.adjustment:
            changes[f"{diff.job} -> {diff.adjusted_by}"].update(
                {
                    "added": diff.added,
                    "removed": diff.removed,
                    "moved": diff.moved,
                    "attributes_changed": diff.attributes_changed,
                    "compared": diff.compared,
                }
            )
    lines = ["## What the adjustment level changed", ""]
    if not changes:
        return [*lines, "No adjustment levels in this selection.", ""]
    _grouped(out / "adjustment_changes.png", "Adjustment level vs level 1", changes)
    lines += [
        "![](adjustment_changes.png)",
        "",
        "| jobs | compared | added | removed | moved | attributes changed |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in changes.items():
        lines.append(
            f"| {name} | {c['compared']} | {c['added']} | {c['removed']} | "
            f"{c['moved']} | {c['attributes_changed']} |"
        )
    return [*lines, ""]


def _clips_to_look_at(entries: Sequence[IndexEntry]) -> list[str]:
    worst = [
        e
        for e in sorted(entries, key=lambda e: e.errors + e.warnings, reverse=True)[:10]
        if e.errors + e.warnings
    ]
    if not worst:
        return []
    return [
        "## Clips to look at first (validation problems)",
        "",
        "| clip | errors | warnings | summary |",
        "|---|---|---|---|",
        *(f"| {e.clip_id} | {e.errors} | {e.warnings} | {e.summary_uri} |" for e in worst),
        "",
    ]
