"""What the soak samples while it runs: every process's resident memory and the namespace's
queue depths, against the number of clips that had an outcome by then."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_verdict import RssWindow


def rss_kib(pid: int) -> int | None:
    """A process's resident set size (VmRSS, KiB) from /proc; None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the soak started
    clips_done: int  # clips with an outcome by then
    rss: dict[str, tuple[int, int]]  # process -> (pid, KiB)
    depths: dict[str, tuple[int, int]]  # queue -> (ready, unacknowledged); {} when not read


@dataclass
class Watch:
    samples: list[Sample] = field(default_factory=list)

    def sample(
        self,
        at: float,
        clips_done: int,
        pids: dict[str, int],
        depths: dict[str, tuple[int, int]] | None = None,
    ) -> Sample:
        rss = {name: (pid, kib) for name, pid in pids.items() if (kib := rss_kib(pid)) is not None}
        taken = Sample(at, clips_done, rss, depths or {})
        self.samples.append(taken)
        return taken

    def windows(self, after_clips: int) -> tuple[list[RssWindow], list[str]]:
        """Per process: the RSS of its last instance after that instance's first
        ``after_clips`` clips, against its RSS at the end; and the processes without one."""
        if not self.samples:
            return [], []
        windows, unjudged = [], []
        for name, (pid, end_kib) in self.samples[-1].rss.items():
            life = [s for s in self.samples if s.rss.get(name, (0, 0))[0] == pid]
            started = life[0].clips_done
            baseline = next((s for s in life if s.clips_done - started >= after_clips), None)
            if baseline is None:
                unjudged.append(name)
                continue
            seen = self.samples[-1].clips_done - baseline.clips_done
            windows.append(RssWindow(name, pid, seen, baseline.rss[name][1], end_kib))
        return windows, unjudged

    def at_clips(self, clips: int) -> Sample | None:
        """The first sample taken once ``clips`` clips had an outcome."""
        return next((s for s in self.samples if s.clips_done >= clips), None)

    def peak_depths(self) -> dict[str, int]:
        """The most messages (ready + unacknowledged) each queue held in any sample."""
        peaks: dict[str, int] = {}
        for s in self.samples:
            for queue, (ready, unacked) in s.depths.items():
                peaks[queue] = max(peaks.get(queue, 0), ready + unacked)
        return peaks

    def last_depths(self) -> dict[str, tuple[int, int]]:
        return next((s.depths for s in reversed(self.samples) if s.depths), {})
