"""Shared pieces of the benchmarks: statistics, the ideal schedule, images, caps, process stats."""

from __future__ import annotations

import base64
import heapq
import io
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bot.offline.dashscope import DashScopeEmulator

API_KEY = "bench-key"
REPO = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 values, p95 is the 19th)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ideal_makespan(durations: Sequence[float], slots: int) -> float:
    """The tasks, in submission order, list-scheduled on ``slots`` with zero lag."""
    free = [0.0] * slots
    end = 0.0
    for duration in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + duration)
        end = max(end, start + duration)
    return end


@dataclass(frozen=True)
class TaskRun:
    """What the emulator's records say about one batch of wanx tasks."""

    tasks: int
    ideal: float  # list-scheduled makespan with zero lag
    achieved: float  # first submit received -> last end seen
    lag_median: float
    lag_p95: float
    lag_max: float
    lag_mean: float
    handover_mean: float  # an end seen -> the next task's submit received (the slot's idle tail)
    polls_mean: float
    polls_total: int
    max_requests_1s: int
    max_in_progress: int

    @property
    def efficiency(self) -> float:
        return self.ideal / self.achieved


def task_run(emulator: DashScopeEmulator, slots: int) -> TaskRun:
    """Figures of every task the emulator ran, from its own clock and records."""
    records = sorted(emulator.tasks.values(), key=lambda t: t.submitted_at)
    if not records or any(t.final_seen_at is None for t in records):
        raise RuntimeError("some task's end was never seen")
    durations = [t.due_at - t.submitted_at for t in records]
    seen = [t.final_seen_at for t in records if t.final_seen_at is not None]
    lags = [t.final_seen_at - t.due_at for t in records if t.final_seen_at is not None]
    polls = [t.polls for t in records]
    # The k-th submit after the first ``slots`` took the slot freed by the (k - slots)-th end.
    ends = sorted(seen)
    handovers = [
        records[k].submitted_at - ends[k - slots] for k in range(slots, len(records))
    ]
    return TaskRun(
        tasks=len(records),
        ideal=ideal_makespan(durations, slots),
        achieved=max(seen) - records[0].submitted_at,
        lag_median=statistics.median(lags),
        lag_p95=percentile(lags, 0.95),
        lag_max=max(lags),
        lag_mean=statistics.mean(lags),
        handover_mean=statistics.mean(handovers) if handovers else 0.0,
        polls_mean=statistics.mean(polls),
        polls_total=sum(polls),
        max_requests_1s=emulator.max_requests_in_window(1.0),
        max_in_progress=emulator.max_tasks_in_progress(),
    )


def photo_like(width: int, height: int, seed: int = 0, fmt: str = "JPEG") -> bytes:
    """A synthetic image with gradients and noise: it compresses like a photo, not a flat fill."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 24 + seed % 7)
    radial = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, noise, radial))
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 90} if fmt == "JPEG" else {}
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def small_png_uri(side: int = 512) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), "grey").save(buffer, "PNG")
    return data_uri(buffer.getvalue())


def caps_line(name: str, run: TaskRun | None, qps: float, max_tasks: int) -> str:
    """One row of the caps table: the emulator's worst second and widest overlap vs settings."""
    if run is None:
        return f"| {name} | - | - |"
    ok = run.max_requests_1s <= qps and run.max_in_progress <= max_tasks
    return (
        f"| {name} | {run.max_requests_1s} (cap {qps:g}) | {run.max_in_progress} "
        f"(cap {max_tasks}) | {'ok' if ok else 'OVER'} |"
    )


# --- a process's resources from /proc (Linux) ------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> bool:
    """Start a new peak (VmHWM) from the current RSS; False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
