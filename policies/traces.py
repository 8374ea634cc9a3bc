"""Demand traces for back-testing: task arrivals `(submit_time, instances, duration_seconds)`.

Readers for a CSV of task arrivals and for the Standard Workload Format (SWF) of the Parallel
Workloads Archive. Pure: they take text and return values; malformed lines are reported by number.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

CSV_COLUMNS = ("submit_time", "instances", "duration_seconds")


class TraceError(ValueError):
    """A trace that cannot be read at all; the message names the line and the fix."""


@dataclass(frozen=True)
class Trace:
    arrivals: tuple[tuple[float, int, float], ...]   # sorted by submit time
    skipped: tuple[str, ...] = field(default=())      # "line N: why", for lines left out

    @property
    def instances(self) -> int:
        return sum(n for _, n, _ in self.arrivals)


def _trace(rows: list[tuple[float, int, float]], skipped: list[str]) -> Trace:
    return Trace(tuple(sorted(rows)), tuple(skipped))


def read_csv(text: str) -> Trace:
    """CSV with a header naming `submit_time,instances,duration_seconds` (seconds, any order of columns)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise TraceError(f"line 1: the CSV header lacks {', '.join(missing)}; "
                         f"expected columns {','.join(CSV_COLUMNS)}")
    rows, skipped = [], []
    for number, row in enumerate(reader, start=2):
        try:
            submit, count, duration = (float(row["submit_time"]), int(row["instances"]),
                                       float(row["duration_seconds"]))
            if submit < 0 or count < 1 or duration < 0:
                raise ValueError("negative time, or fewer than one instance")
        except (TypeError, ValueError) as exc:
            skipped.append(f"line {number}: {exc}")
            continue
        rows.append((submit, count, duration))
    return _trace(rows, skipped)


def read_swf(text: str) -> Trace:
    """SWF: `;` comments; fields 2 (submit time), 4 (run time) and 5 (allocated processors), 1-based.

    A processor is taken as one slot. Jobs whose run time or processors are unknown (-1) are skipped
    and counted, as are lines with fewer than 5 fields or non-numeric values.
    """
    rows, skipped = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        fields = line.split()
        try:
            if len(fields) < 5:
                raise ValueError(f"{len(fields)} fields, SWF has 18")
            submit, run, processors = float(fields[1]), float(fields[3]), int(float(fields[4]))
        except ValueError as exc:
            skipped.append(f"line {number}: {exc}")
            continue
        if run < 0 or processors < 1 or submit < 0:
            skipped.append(f"line {number}: unknown run time or processors (-1)")
            continue
        rows.append((submit, processors, run))
    return _trace(rows, skipped)


def history_to_trace(frame) -> tuple[Trace, float, float]:
    """A tracker history frame (`Store.history`) -> (trace, window start, window end), times in seconds.

    The API reports counts, not tasks, so the trace is an estimate: each rise of queued-or-running
    instances is that many arrivals at the poll that saw it; each fall is that many completions. With
    busy instances taken as min(queued-or-running, running slots), instances start in arrival order as
    busy rises and finish oldest-started first, which gives each its duration. Instances still running
    at the end keep the duration they had so far. Arrivals and completions between two polls are seen
    at the later poll, so the estimate's resolution is the poll interval.
    """
    if len(frame) == 0:
        return Trace(()), 0.0, 0.0
    at = frame["at"].to_numpy()
    times = at.astype("datetime64[us]").astype("int64") / 1e6 if at.dtype.kind == "M" else at.astype(float)
    queued_or_running = frame["queued_or_running"].to_numpy()
    slots = frame["running_slots"].to_numpy()
    waiting: list[float] = []     # arrival times, oldest first
    running: list[list[float]] = []  # [arrival, start], oldest start first
    rows: list[tuple[float, int, float]] = []
    previous = 0
    for t, q, r in zip(times, queued_or_running, slots):
        t, q = float(t), int(q)
        if q < previous:                               # completions
            for _ in range(previous - q):
                arrival, started = (running.pop(0) if running else (waiting.pop(0), t))
                rows.append((arrival, 1, t - started))
        elif q > previous:                             # arrivals
            waiting.extend([t] * (q - previous))
        while waiting and len(running) < min(q, int(r)):
            running.append([waiting.pop(0), t])
        previous = q
    end = float(times[-1])
    rows.extend((arrival, 1, end - started) for arrival, started in running)
    rows.extend((arrival, 1, 0.0) for arrival in waiting)
    grouped: dict[tuple[float, float], int] = {}
    for arrival, n, duration in rows:
        grouped[(arrival, duration)] = grouped.get((arrival, duration), 0) + n
    return _trace([(a, n, d) for (a, d), n in grouped.items()], []), float(times[0]), end


def tasks_to_trace(rows, end: float) -> Trace:
    """Recorded tasks (`created, instances, started, ended, run_seconds`, epoch seconds or None; the
    `tasks` view) -> the trace of what really arrived: each task at its creation time with its instances
    and their real run time. Like `history_to_trace`, a task still running at `end` keeps the run time it
    had so far, and one still waiting gets 0 (its wait is what the replay scores). Tasks created after
    `end`, and tasks that ended without ever running (cancelled in the queue), are left out."""
    out = []
    for created, instances, started, ended, run_seconds in rows:
        if created is None or created > end or not instances or instances < 1:
            continue
        if ended is not None and started is None:
            continue
        if run_seconds is not None and ended is not None and ended <= end:
            duration = float(run_seconds)
        elif started is not None and started <= end:
            duration = end - float(started)
        else:
            duration = 0.0
        out.append((float(created), int(instances), max(0.0, duration)))
    return _trace(out, [])


def tasks_cover_history(first_demand_at: float | None, first_task_recorded_at: float | None,
                        slack_seconds: float = 3600.0) -> bool:
    """Were tasks being recorded when the pool's counts first showed work? If the counts show queued or
    running instances more than `slack_seconds` before the first task was recorded, the task record
    misses that work (task collection began later, or was off), and the counts must speak instead."""
    if first_task_recorded_at is None:
        return False
    return first_demand_at is None or first_demand_at >= first_task_recorded_at - slack_seconds
