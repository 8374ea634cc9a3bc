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
