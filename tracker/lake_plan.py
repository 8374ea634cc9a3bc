"""What a Parquet lake still lacks of one tracker's log, and how to cut it into files (pure).

The lake is its own progress marker: each file's name carries its tracker and the key range it holds
(`seq` for events, `poll_id` for polls), so listing a tracker's files says what is published. A restart
resumes where the files end; a crash between two files leaves a gap the next run fills, never a
duplicate. A file's range claims every key in it, so keys the database never used (none, today: the
sequence is contiguous) are not asked for again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

# Lowercase, starting with a letter: safe as a directory name on every file system and object store,
# and never taken for a number by engines that infer partition types (Spark).
TRACKER_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
TRACKER_ID_RULE = "lowercase letters, digits, '-' and '_', starting with a letter, at most 63 characters"
_FILE = re.compile(r"^(?P<tracker>[a-z][a-z0-9_-]*)-(?P<first>\d{12,})-(?P<last>\d{12,})\.parquet$")


@dataclass(frozen=True, order=True)
class Span:
    """Keys `first`..`last`, both included."""
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def file_name(tracker: str, span: Span) -> str:
    """Zero-padded, so names sort in key order."""
    return f"{tracker}-{span.first:012d}-{span.last:012d}.parquet"


def parse_file_name(name: str) -> tuple[str, Span] | None:
    """The tracker and range of a published file; None for anything else (temporary files included)."""
    match = _FILE.match(name)
    if match is None:
        return None
    return match["tracker"], Span(int(match["first"]), int(match["last"]))


def partition(table: str, tracker: str, day: str) -> str:
    """The Hive-style folder of one table, tracker and UTC day (YYYY-MM-DD), relative to the lake's root."""
    return f"{table}/tracker={tracker}/date={day}"


def missing(covered: Iterable[Span], last: int) -> list[Span]:
    """The ranges of 1..`last` no published file covers, in order."""
    gaps, next_key = [], 1
    for span in sorted(covered):
        if span.first > next_key:
            gaps.append(Span(next_key, min(span.first - 1, last)))
        next_key = max(next_key, span.last + 1)
        if next_key > last:
            break
    if next_key <= last:
        gaps.append(Span(next_key, last))
    return [g for g in gaps if g.first <= g.last]


def overlaps(covered: Iterable[Span]) -> list[tuple[Span, Span]]:
    """Pairs of files that hold a key twice: only two publishers of one tracker at once can cause them."""
    found, reach = [], None
    for span in sorted(covered):
        if reach is not None and span.first <= reach.last:
            found.append((reach, span))
        if reach is None or span.last > reach.last:
            reach = span
    return found


def chunks(gaps: Iterable[Span], size: int) -> list[Span]:
    """Each gap cut at multiples of `size`, so two runs over the same gap name their files alike."""
    out = []
    for gap in gaps:
        first = gap.first
        while first <= gap.last:
            last = min(gap.last, (first - 1) // size * size + size)
            out.append(Span(first, last))
            first = last + 1
    return out


def day_runs(keys: Sequence[int], days: Sequence[str], chunk: Span) -> list[tuple[Span, str, int, int]]:
    """Cut one chunk's rows (sorted by key, each with its UTC day) into files, one per run of rows on the
    same day: (range, day, first row, row after the last). The ranges tile the chunk exactly, so a crash
    between two of them leaves a gap the next run fills with the same rows."""
    if len(keys) != len(days):
        raise ValueError("one day per key")
    starts = [i for i in range(len(keys)) if i == 0 or days[i] != days[i - 1]]
    runs = []
    for n, start in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else len(keys)
        first = chunk.first if n == 0 else keys[start]
        last = keys[stop] - 1 if stop < len(keys) else chunk.last
        runs.append((Span(first, last), days[start], start, stop))
    return runs


def default_tracker_id(hostname: str, db_stem: str) -> str:
    """`<host>-<database file name>`: stable across restarts, distinct for two daemons on one machine."""
    raw = re.sub(r"[^a-z0-9_-]+", "-", f"{hostname.split('.')[0]}-{db_stem}".lower()).strip("-")
    if not raw[:1].isalpha():
        raw = f"t-{raw}"
    return raw[:63].rstrip("-_") or "t"
