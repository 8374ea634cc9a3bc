"""The emulator's tasks: every arrival its pools run (workload arrivals and `POST /tasks` alike) is a task.

A task's timings come from the same simulation that counts the pool's slots: the pool model tells when
each group of its instances starts (`PoolModel.on_dispatch`); each instance then runs the task's duration.
So a task's states, dates and execution time always agree with the pool's busy and queued counts.

States, from those timings (a subset of the SDK's list): Submitted (no instance started yet),
PartiallyExecuting (some started, some still queued), FullyExecuting (all started), Success (all ended);
a pool closing, failing or being deleted drops the queued instances: PendingCancel while started ones
still run, then Cancelled. Times are simulated epoch seconds.

Retention, like the real API keeping finished tasks for a while: a finished task is forgotten
`retention_seconds` after it ended, and sooner, oldest end first, while more than `max_finished` finished
tasks are kept. Arrivals fed ahead of time exist only from their creation date on (hidden before).
"""
from __future__ import annotations

import heapq
import itertools
import uuid as uuidlib
from dataclasses import dataclass, field

DEFAULT_RETENTION_SECONDS = 86_400.0
DEFAULT_MAX_FINISHED = 20_000
TERMINAL = ("Success", "Cancelled", "Failure")


@dataclass(slots=True)
class EmulatedTask:
    key: int              # the model's task key, and the listing order (creation sequence)
    uuid: str
    pool: str
    name: str
    profile: str
    created: float
    instances: int
    duration: float       # seconds each instance runs
    starts: list = field(default_factory=list)   # [(at, instances started)], in time order
    cancelled_at: float | None = None
    extra: dict = field(default_factory=dict)    # document fields given at submission, served back

    @property
    def order(self) -> int:
        return self.key

    @property
    def started(self) -> int:
        return sum(n for _, n in self.starts)

    @property
    def end(self) -> float | None:
        """When the last instance ends (cancelled: when the started ones end); None while some are queued."""
        last_run = max((at + self.duration for at, _ in self.starts), default=None)
        if self.cancelled_at is not None:
            return max(self.cancelled_at, last_run or self.cancelled_at)
        return last_run if self.started >= self.instances else None

    def transitions(self) -> list[tuple[float, str]]:
        """(time, state entered), in time order; some may lie in the future of the simulation."""
        out = [(self.created, "Submitted")]
        running = 0
        for at, n in self.starts:
            running += n
            out.append((at, "FullyExecuting" if running >= self.instances else "PartiallyExecuting"))
        end = self.end
        if self.cancelled_at is not None:
            out.append((self.cancelled_at, "PendingCancel"))
            out.append((end, "Cancelled"))
        elif end is not None:
            out.append((end, "Success"))
        kept: list[tuple[float, str]] = []
        for at, state in out:       # one state per instant (the last), and no repeats
            if kept and kept[-1][0] == at:
                kept.pop()
            if not kept or kept[-1][1] != state:
                kept.append((at, state))
        return kept

    def state_at(self, now: float) -> tuple[tuple[float, str], tuple[float, str] | None]:
        """(time entered, current state) and the one before it, at `now`."""
        seen = [t for t in self.transitions() if t[0] <= now]
        return seen[-1], (seen[-2] if len(seen) > 1 else None)

    def instance_seconds(self, now: float) -> float:
        """Execution time of all its instances so far (each runs `duration` from its start)."""
        return sum(n * min(max(now - at, 0.0), self.duration) for at, n in self.starts)


class TaskBook:
    """All tasks of one emulated account, with the retention rule above (callers hold the cluster lock)."""

    def __init__(self, retention_seconds: float = DEFAULT_RETENTION_SECONDS,
                 max_finished: int = DEFAULT_MAX_FINISHED) -> None:
        self.retention_seconds, self.max_finished = retention_seconds, max_finished
        self._keys = itertools.count()
        self.by_key: dict[int, EmulatedTask] = {}
        self.by_uuid: dict[str, EmulatedTask] = {}
        self.by_pool: dict[str, dict[int, EmulatedTask]] = {}   # a listing naming pools reads only theirs
        self._queued: dict[str, set[int]] = {}     # pool -> tasks with instances not started yet
        self._ends: list[tuple[float, int]] = []   # heap of (end, key) of tasks whose end is known

    def __len__(self) -> int:
        return len(self.by_key)

    def add(self, pool: str, profile: str, created: float, instances: int, duration: float, *,
            name: str | None = None, uuid: str | None = None, extra: dict | None = None) -> EmulatedTask:
        key = next(self._keys)
        task = EmulatedTask(key, uuid or str(uuidlib.UUID(int=key + 1, version=4)), pool,
                            name or f"task-{key}", profile, created, instances, duration, extra=dict(extra or {}))
        self.by_key[key] = self.by_uuid[task.uuid] = task
        self.by_pool.setdefault(pool, {})[key] = task
        self._queued.setdefault(pool, set()).add(key)
        return task

    def dispatched(self, key: int, at: float, n: int) -> None:
        """The pool model started `n` instances of task `key` at `at`."""
        task = self.by_key.get(key)
        if task is None:
            return
        task.starts.append((at, n))
        if task.started >= task.instances:
            self._queued.get(task.pool, set()).discard(key)
            heapq.heappush(self._ends, (task.end, key))

    def cancel_queued(self, pool: str, at: float) -> None:
        """The pool stopped taking work at `at`: its queued instances are dropped; arrivals fed for later
        never happen."""
        for key in sorted(self._queued.pop(pool, ())):
            task = self.by_key[key]
            if task.created > at:
                self._forget(task)
            else:
                task.cancelled_at = at
                heapq.heappush(self._ends, (task.end, key))

    def visible(self, now: float, pools: set[str] | None = None) -> list[EmulatedTask]:
        """Tasks created by `now` and not yet forgotten (of these pools only, if given), in creation order."""
        self.prune(now)
        if pools is None:
            return [t for t in self.by_key.values() if t.created <= now]
        found = [t for pool in pools for t in self.by_pool.get(pool, {}).values() if t.created <= now]
        return sorted(found, key=lambda t: t.key)

    def get(self, uuid: str, now: float) -> EmulatedTask | None:
        self.prune(now)
        task = self.by_uuid.get(uuid)
        return task if task is not None and task.created <= now else None

    def prune(self, now: float) -> None:
        ends = self._ends
        while ends and (ends[0][0] <= now - self.retention_seconds
                        or (len(ends) > self.max_finished and ends[0][0] <= now)):
            task = self.by_key.get(heapq.heappop(ends)[1])
            if task is not None:
                self._forget(task)

    def _forget(self, task: EmulatedTask) -> None:
        self.by_key.pop(task.key, None)
        self.by_uuid.pop(task.uuid, None)
        tasks = self.by_pool.get(task.pool, {})
        tasks.pop(task.key, None)
        if not tasks:
            self.by_pool.pop(task.pool, None)
        self._queued.get(task.pool, set()).discard(task.key)
