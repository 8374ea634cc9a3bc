"""Derivation: previous view + new snapshot + now -> the events that explain the difference. Pure.

An unchanged pool yields nothing. A busy pool whose only change is its execution time yields one
`execution_checkpointed` event on the first poll of each hour, enough to integrate core-seconds per
hour without a row per pool per poll.
"""
from __future__ import annotations

import operator
from datetime import datetime
from typing import Collection, Iterable, Mapping

from tracker.events import Event, PoolView, meta_payload, scaling_payload, settings_payload
from tracker.snapshot import FINISHED, PoolSnapshot, Unreadable

COUNTERS = (  # event type, view field, snapshot field
    ("instances_changed", "running_instances", "running_instance_count"),
    ("cores_changed", "running_cores", "running_core_count"),
    ("queued_changed", "queued_or_running", "queued_or_running_task_instances"),
)
COUNTER_EVENTS = tuple(kind for kind, _, _ in COUNTERS)
_view_counts = operator.attrgetter(*(view_field for _, view_field, _ in COUNTERS))
_snapshot_counts = operator.attrgetter(*(snap_field for _, _, snap_field in COUNTERS))


def derive(view: PoolView | None, snap: PoolSnapshot, now: datetime) -> list[Event]:
    """Events turning `view` (None: never seen) into what `snap` shows at `now`."""
    exec_s = snap.execution_time_seconds

    def event(kind, occurred_at=None, **fields) -> Event:
        return Event(kind, snap.uuid, occurred_at or now, now, execution_seconds=exec_s, **fields)

    out: list[Event] = []
    meta = (snap.name, snap.shortname, snap.profile, snap.tags, snap.labels, snap.slots_per_node,
            snap.scheduling_type, snap.project)
    if view is not None and view.unreadable is not None:
        out.append(event("pool_readable"))
    if view is None or view.state is None:      # never seen, or seen only as an unreadable document
        out.append(event("pool_discovered", payload=meta_payload(*meta)))
        view = view or PoolView(snap.uuid)
    elif meta != (view.name, view.shortname, view.profile, view.tags, view.labels, view.slots_per_node,
                  view.scheduling_type, view.project):
        out.append(event("pool_updated", payload=meta_payload(*meta)))

    out.extend(_state_events(view, snap, now, event))
    olds, news = _view_counts(view), _snapshot_counts(snap)
    if olds != news:                            # (one comparison for the many pools whose counts stay put)
        for kind, old, new in zip(COUNTER_EVENTS, olds, news):
            if old != new:
                out.append(event(kind, value_old=old, value_new=new))
    if snap.elastic != view.settings:
        out.append(event("settings_changed", payload={"old": settings_payload(view.settings),
                                                      "new": settings_payload(snap.elastic)}))
    if snap.scaling != view.scaling:
        out.append(event("scaling_changed", payload={"old": scaling_payload(view.scaling),
                                                     "new": scaling_payload(snap.scaling)}))
    if snap.active_policy != view.active_policy:
        out.append(event("scaling_policy_activated", payload={"from": view.active_policy, "to": snap.active_policy}))
    if snap.errors != view.errors:
        out.append(event("errors_appeared", payload={"errors": list(snap.errors)}) if snap.errors
                   else event("errors_cleared"))
    if not out and exec_s != view.execution_seconds and _new_hour(view.execution_at, now):
        out.append(event("execution_checkpointed"))
    return out


def _state_events(view: PoolView, snap: PoolSnapshot, now: datetime, event) -> list[Event]:
    """State transitions, including one the API's `previousState` reveals between two polls. Their times
    are the API's, kept between the previous transition and now, so no state ever lasts a negative time."""
    since = snap.state_transition_time
    moved = snap.state != view.state or (since is not None and view.state_since is not None
                                         and since > view.state_since)
    if not moved:
        return []
    since = _within(since, view.state_since, now)
    hidden = snap.previous_state
    if hidden and hidden not in (view.state, snap.state):
        hidden_since = _within(snap.previous_state_transition_time, view.state_since, since or now)
        return [event("state_changed", hidden_since, state_from=view.state, state_to=hidden),
                event("state_changed", since, state_from=hidden, state_to=snap.state)]
    return [event("state_changed", since, state_from=view.state, state_to=snap.state)]


def _within(at: datetime | None, earliest: datetime | None, latest: datetime) -> datetime | None:
    if at is None:
        return None
    if earliest is not None and at < earliest:
        return earliest
    return min(at, latest)


def _new_hour(last: datetime | None, now: datetime) -> bool:
    return last is None or last.hour != now.hour or last.date() != now.date()


def derive_poll(views: Mapping[str, PoolView], snapshots: Iterable[PoolSnapshot], now: datetime,
                unreadable: Iterable[Unreadable] = (), gone: Collection[str] | None = None) -> list[Event]:
    """Events for a whole successful poll. `gone=None`: the listing was complete, so a known pool it lacks
    has vanished. Otherwise the listing was partial (live pools only) and only the pools in `gone` (the API
    said 404) vanished: absent from a partial listing is not gone. A pool whose document could not be read
    is still there: it gets `pool_unreadable` (once per reason), never `pool_vanished`."""
    out: list[Event] = []
    seen = set()
    for snap in snapshots:
        seen.add(snap.uuid)
        out.extend(derive(views.get(snap.uuid), snap, now))
    for bad in unreadable:
        if bad.uuid is None or bad.uuid in seen:
            continue
        seen.add(bad.uuid)
        view = views.get(bad.uuid)
        if view is None or view.unreadable != bad.reason:
            out.append(Event("pool_unreadable", bad.uuid, now, now, payload={"reason": bad.reason}))
    vanished = views.keys() - seen if gone is None else (views.keys() & set(gone)) - seen
    for uuid in vanished:
        out.append(Event("pool_vanished", uuid, now, now))
    return out


def unaccounted(views: Mapping[str, PoolView], listed: Collection[str]) -> list[str]:
    """Pools a live-only listing should have shown but did not: known, not finished, not listed. Each
    either finished or was deleted since the last poll; only asking for it tells which."""
    return [uuid for uuid, view in views.items() if view.state not in FINISHED and uuid not in listed]
