"""Events, the one source of truth, and the fold that turns them into each pool's current view.

An event records a change, never a sample: a pool that does nothing costs no rows. Pool events carry
the pool's `executionTime` as seen at that poll, so core-seconds can be integrated between them.
Adding an event type means adding its name to `EVENT_TYPES` and, if it changes the view, a case in
`_note_changes` (the one place `apply` and the batch `fold` learn what an event sets). Schema changes add
versions in the store; history is never rewritten.
"""
from __future__ import annotations

import dataclasses
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

from policies.scaling import Scaling
from policies.settings import ElasticSettings

EVENT_TYPES = (
    "pool_discovered",         # payload: name, shortname, profile, tags, labels
    "pool_updated",            # payload: the same, when name/profile/tags/labels change
    "state_changed",           # state_from -> state_to, at the API's own transition time
    "instances_changed",       # running instances (slots) value_old -> value_new
    "cores_changed",           # running cores value_old -> value_new
    "queued_changed",          # queued-or-running task instances value_old -> value_new
    "settings_changed",        # payload: old, new elasticProperty
    "scaling_changed",         # payload: old, new `scaling` policies (without activePolicyName)
    "scaling_policy_activated",  # payload: from, to: the API's activePolicyName switched
    "errors_appeared",         # payload: errors
    "errors_cleared",
    "execution_checkpointed",  # execution_seconds only: first poll of each hour for a busy pool
    "pool_vanished",
    "credits_checkpointed",    # value_new: euros the pool has consumed so far (hourly, and once when it ends)
    "carbon_checkpointed",     # value_new: Wh consumed so far; payload: the carbon facts (cumulative gCO2eq, PUE...)
    "account_observed",        # no pool; payload: what (quotas, budgets:<project>, account_credits), value
    "pool_unreadable",         # payload: reason; the document failed to parse (once per distinct reason)
    "pool_readable",           # its document parses again
    # a pool's tasks, from the tasks collector (payload: task uuid; see tracker.tasks)
    "task_submitted",          # at creationDate; value_new: instances; payload: task, name
    "task_started",            # when its first instance started; value_new: instances
    "task_finished",           # at endDate; state_to: final state; execution_seconds: all instances'; payload: run_seconds
    "task_unreadable",         # payload: task, reason; its document failed to parse (once per distinct reason)
    # written by the advisor (payload: its decision)
    "recommendation_made", "commit_applied", "commit_refused", "commit_failed",
)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    pool_uuid: str | None
    occurred_at: datetime          # when it happened (the API's transition time where it gives one)
    recorded_at: datetime          # when the poll observed it
    state_from: str | None = None
    state_to: str | None = None
    value_old: float | None = None
    value_new: float | None = None
    execution_seconds: float | None = None
    payload: dict | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True)
class PoolView:
    """What the tracker currently believes about one pool: a fold over its events."""
    uuid: str
    name: str = ""
    shortname: str | None = None
    profile: str | None = None
    tags: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    state: str | None = None
    state_since: datetime | None = None
    running_instances: int = 0
    running_cores: int = 0
    queued_or_running: int = 0
    settings: ElasticSettings | None = None
    scaling: Scaling | None = None
    active_policy: str | None = None
    slots_per_node: int = 1
    scheduling_type: str | None = None
    project: str | None = None
    errors: tuple[str, ...] = ()
    execution_seconds: float = 0.0
    execution_at: datetime | None = None
    discovered_at: datetime | None = None
    unreadable: str | None = None    # why its last document could not be read, while that lasts
    credits_euros: float | None = None                    # consumed so far, at the last checkpoint
    carbon: tuple[tuple[str, object], ...] = ()           # the last carbon facts, as (name, value) pairs


def meta_payload(name, shortname, profile, tags, labels, slots_per_node, scheduling_type, project) -> dict:
    return {"name": name, "shortname": shortname, "profile": profile, "tags": list(tags),
            "labels": {k: v for k, v in labels}, "slots_per_node": slots_per_node, "scheduling_type": scheduling_type,
            "project": project}


def scaling_payload(scaling: Scaling | None) -> dict | None:
    return None if scaling is None else scaling.to_api()


def settings_payload(settings: ElasticSettings | None) -> dict | None:
    return None if settings is None else settings.to_api()


FIGURE_TYPES = ("credits_checkpointed", "carbon_checkpointed")
ADVISOR_TYPES = ("recommendation_made", "commit_applied", "commit_refused", "commit_failed")
TASK_TYPES = ("task_submitted", "task_started", "task_finished", "task_unreadable")


def apply(view: PoolView | None, event: Event) -> PoolView | None:
    """The projection fold: the view after `event` (None once a pool has vanished)."""
    return fold(view, (event,))


def fold(view: PoolView | None, events: Iterable[Event]) -> PoolView | None:
    """The view after one pool's `events`, in order: what `apply`-ing them one by one gives, but the view is
    rebuilt once, not once per event (copying a 24-field frozen dataclass costs microseconds)."""
    changes: dict = {}
    for event in events:
        kind = event.type
        if kind in _DECISIONS:
            continue                    # decisions about a pool, or its tasks: not observations of the pool
        if view is None or kind == "pool_vanished":
            if kind == "pool_vanished" or kind in FIGURE_TYPES:
                view, changes = None, {}    # (figures fetched just as a pool went away do not bring it back)
                continue
            view = PoolView(event.pool_uuid, discovered_at=event.recorded_at)
        if event.execution_seconds is not None:
            changes["execution_seconds"] = event.execution_seconds
            changes["execution_at"] = event.recorded_at
        counter = _COUNTERS.get(kind)
        if counter is not None:         # the most frequent events, first
            changes[counter] = int(event.value_new)
        else:
            _note_changes(kind, event, changes)
    return _rebuilt(view, changes) if changes else view


_DECISIONS = frozenset(ADVISOR_TYPES + TASK_TYPES)
_COUNTERS = {"instances_changed": "running_instances", "cores_changed": "running_cores",
             "queued_changed": "queued_or_running"}


def folded(views: Mapping[str, PoolView], events: Iterable[Event]) -> dict[str, PoolView | None]:
    """Each pool the `events` touch -> its view after them (None: gone), folding each pool's events at once."""
    by_pool: defaultdict[str | None, list[Event]] = defaultdict(list)
    for event in events:
        by_pool[event.pool_uuid].append(event)
    by_pool.pop(None, None)             # events about no pool (the account's figures)
    return {uuid: fold(views.get(uuid), mine) for uuid, mine in by_pool.items()}


def _note_changes(kind: str, event: Event, changes: dict) -> None:
    """The fields one event sets, written into `changes` (later events overwrite earlier ones)."""
    payload = event.payload or {}
    if kind == "state_changed":
        changes["state"], changes["state_since"] = event.state_to, event.occurred_at
    elif kind in ("pool_discovered", "pool_updated"):
        changes.update(name=payload["name"], shortname=payload.get("shortname"), profile=payload.get("profile"),
                       tags=tuple(payload.get("tags") or ()),
                       labels=tuple(sorted((payload.get("labels") or {}).items())),
                       slots_per_node=payload.get("slots_per_node") or 1, scheduling_type=payload.get("scheduling_type"),
                       project=payload.get("project"))
    elif kind == "settings_changed":
        new = payload.get("new")
        changes["settings"] = None if new is None else ElasticSettings.from_api(new)
    elif kind == "scaling_changed":
        new = payload.get("new")
        changes["scaling"] = None if new is None else Scaling.from_api(new)
    elif kind == "scaling_policy_activated":
        changes["active_policy"] = payload.get("to")
    elif kind == "errors_appeared":
        changes["errors"] = tuple(payload.get("errors") or ())
    elif kind == "errors_cleared":
        changes["errors"] = ()
    elif kind == "credits_checkpointed":
        changes["credits_euros"] = event.value_new
    elif kind == "carbon_checkpointed":
        changes["carbon"] = tuple(sorted(payload.items()))
    elif kind == "pool_unreadable":
        changes["unreadable"] = payload.get("reason") or "unreadable"
    elif kind == "pool_readable":
        changes["unreadable"] = None


_VIEW_FIELDS = tuple(f.name for f in dataclasses.fields(PoolView))
_view_values = operator.attrgetter(*_VIEW_FIELDS)
_VIEW_POSITION = {name: i for i, name in enumerate(_VIEW_FIELDS)}


def _rebuilt(view: PoolView, changes: dict) -> PoolView:
    """`dataclasses.replace(view, **changes)` in a third of the time (once per changed pool per poll)."""
    values = list(_view_values(view))
    for name, value in changes.items():
        values[_VIEW_POSITION[name]] = value
    return PoolView(*values)
