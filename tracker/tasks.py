"""Real task data: the API's task documents -> values -> events. Pure.

A task's life is recorded as at most three events, each once, when the tasks collector first sees it:
`task_submitted` (at its `creationDate`, with its instance count), `task_started` (when its first
instance started) and `task_finished` (at its `endDate`, with its final state and the execution time of
all its instances). The API has no start date, so the start is derived: `endDate - wallTime` once the
task has ended, `status.lastUpdateTimestamp - wallTime` while it runs (wall time runs from the first
instance's start). A task cancelled before any instance ran has no start.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tracker.events import Event
from tracker.parse import BadDocument, _count, _str, _time, parse_timespan

TERMINAL = ("Success", "Failure", "Cancelled")
WAITING = ("UnSubmitted", "Submitted", "PartiallyDispatched", "FullyDispatched")
PHASES = ("task_submitted", "task_started", "task_finished")   # in the order a task goes through them


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    uuid: str
    pool: str
    name: str | None
    state: str
    created: datetime
    instances: int
    started: datetime | None       # first instance's start (derived, see above); None: none started
    ended: datetime | None         # endDate, once terminal
    instance_seconds: float        # execution time of all its instances so far

    @property
    def phase(self) -> str:
        if self.state in TERMINAL:
            return "task_finished"
        return "task_submitted" if self.started is None else "task_started"


def parse_task(doc: object) -> TaskSnapshot:
    """One task document -> snapshot, or `BadDocument` naming the field that is wrong."""
    if not isinstance(doc, dict):
        raise BadDocument(f"a task should be a JSON object, got {type(doc).__name__}")
    uuid, pool, state = _str(doc, "uuid"), _str(doc, "poolUuid"), _str(doc, "state")
    for key, value in (("uuid", uuid), ("poolUuid", pool), ("state", state)):
        if not value or len(value) > 200:
            raise BadDocument(f"field {key!r} should be a non-empty string of at most 200 characters")
    created = _time(doc, "creationDate")
    if created is None:
        raise BadDocument("field 'creationDate' is missing")
    instances = _count("instanceCount", doc.get("instanceCount"))
    if instances < 1:
        raise BadDocument(f"field 'instanceCount' should be at least 1, got {instances}")
    status = doc.get("status") if isinstance(doc.get("status"), dict) else {}
    wall = _seconds(status, "wallTimeSec", doc, "wallTime")
    executed = _seconds(status, "executionTimeSec", doc, "executionTime")
    ended = _time(doc, "endDate") if state in TERMINAL else None
    if state in TERMINAL:
        ended = ended or _time(doc, "stateTransitionTime")
        if ended is None:
            raise BadDocument(f"a {state} task without 'endDate'")
        started = ended - timedelta(seconds=wall) if wall > 0 or executed > 0 else None
    elif state in WAITING:
        started = None
    else:
        seen = _time(status, "lastUpdateTimestamp") or _time(doc, "stateTransitionTime")
        started = (seen - timedelta(seconds=wall)) if seen is not None else created
    if started is not None:
        started = max(started, created)
    return TaskSnapshot(uuid, pool, _str(doc, "name"), state, created, instances, started, ended, executed)


def _seconds(status: dict, key: str, doc: dict, timespan_key: str) -> float:
    """A duration in seconds: `status.<key>` when the API gives it, else the document's timespan."""
    value = status.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value < 1e12:
            raise BadDocument(f"field 'status.{key}' should be a number of seconds >= 0, got {value!r}")
        return float(value)
    text = doc.get(timespan_key)
    if text is None:
        return 0.0
    if not isinstance(text, str):
        raise BadDocument(f"field {timespan_key!r} should be a timespan string, got {text!r}"[:200])
    seconds = parse_timespan(text)
    if seconds < 0:
        raise BadDocument(f"field {timespan_key!r} should not be negative, got {text!r}")
    return seconds


def task_events(task: TaskSnapshot, recorded: str | None, now: datetime) -> list[Event]:
    """The events for what `task` shows beyond `recorded` (the latest phase already recorded, or None)."""
    done = PHASES.index(recorded) + 1 if recorded in PHASES else 0
    out = []
    ids = {"task": task.uuid}
    if done <= 0:
        out.append(Event("task_submitted", task.pool, task.created, now, value_new=task.instances,
                         payload={**ids, "name": task.name}))
    if done <= 1 and task.started is not None:
        out.append(Event("task_started", task.pool, task.started, now, value_new=task.instances, payload=ids))
    if done <= 2 and task.phase == "task_finished":
        out.append(Event("task_finished", task.pool, task.ended, now, state_to=task.state, value_new=task.instances,
                         execution_seconds=task.instance_seconds,
                         payload={**ids, "run_seconds": task.instance_seconds / task.instances}))
    return out


def live_filter(pools: list[str], open_only: bool) -> dict:
    """The listing filter: tasks of these pools (`In`, one request for many pools), not yet ended if asked."""
    by_pool = {"operator": "In", "field": "PoolUuid", "value": list(pools)}
    if not open_only:
        return by_pool
    return {"operator": "And", "filters": [by_pool, {"operator": "NotIn", "field": "State", "value": list(TERMINAL)}]}
