"""One poll cycle: list pools -> derive events -> append them with a coverage row. Success or not,
the poll is recorded, so a gap in observation is never mistaken for "nothing changed"."""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from tracker.api import ApiError, ApiUnavailable, AuthError, QarnotClient, Unreadable
from tracker.derive import derive_poll, unaccounted
from tracker.store import Store, StoreError


LOOKUP_LIMIT = 50   # pools a live poll asks for one by one before a full listing is cheaper


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def server_clock(client: QarnotClient) -> Callable[[], datetime]:
    """Time as the API tells it: right for an emulator whose simulated time runs faster than ours."""
    return lambda: client.server_time or utc_now()


@dataclass(frozen=True)
class PollResult:
    poll_id: int
    outcome: str                  # "ok" or the failure's reason code ("unavailable", "store_failed", ...)
    message: str
    pools_seen: int
    duration_seconds: float
    events_by_type: Counter = field(default_factory=Counter)
    unreadable: int = 0           # pool documents quarantined this poll
    retry_after: float | None = None
    complete: bool = True         # every pool was listed (a sweep), not only the live ones

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def events_written(self) -> int:
        return sum(self.events_by_type.values())


@dataclass
class Sweeps:
    """Between full listings (every `every`, and first of all), polls list live pools only: finished pools
    never change, and the few that finish or go between two polls are asked for one by one."""
    every: timedelta
    done_at: datetime | None = None

    def live_only(self, now: datetime) -> bool:
        return self.done_at is not None and now - self.done_at < self.every

    def record(self, result: "PollResult", now: datetime) -> None:
        if result.ok and result.complete:
            self.done_at = now


def poll_once(client: QarnotClient, store: Store, *, tags: Sequence[str] = (),
              keep: Callable = lambda snapshot: True, clock: Callable[[], datetime] = utc_now,
              live_only: bool = False) -> PollResult:
    """Poll, derive and append; API trouble becomes a recorded failed poll, not an exception.
    `live_only`: list only pools not finished, and ask one by one for the known ones it misses."""
    with gc_paused():
        return _poll(client, store, tags, keep, clock, live_only)


@contextmanager
def gc_paused():
    """A 10,000-pool poll allocates ~1M short-lived, acyclic objects: collecting during it only re-walks
    the long-lived projection, which tripled the cost of a poll in benchmarks/bench_poll_cycle.py."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _poll(client, store, tags, keep, clock, live_only) -> PollResult:
    timer = time.perf_counter()
    gone = None
    try:
        listed = client.list_pools(tags, live_only=live_only)
        if live_only:
            listed, gone = _with_missing(client, store.views, listed, tags)
    except ApiError as exc:
        return _failed(store, clock, timer, exc.reason, str(exc), exc.retry_after)
    finished = clock()  # the observation instant (the end of the listing)
    behind = store.last_recorded
    if behind is not None and finished < behind:
        return _failed(store, clock, timer, "clock_behind",
                       f"the clock ({finished.isoformat()}) is behind the history's last record ({behind.isoformat()}); "
                       "fix this machine's clock (or api.clock): polls resume once it has caught up")
    unreadable = [p for p in listed if isinstance(p, Unreadable)]
    snapshots = [s for s in listed if not isinstance(s, Unreadable) and keep(s)]
    events = derive_poll(store.views, snapshots, finished, unreadable, gone)
    started = finished - timedelta(seconds=time.perf_counter() - timer)   # right for the server clock too
    message = _unreadable_message(unreadable)
    try:
        poll_id = store.append_poll(started, finished, events, pools_seen=len(snapshots), message=message)
    except StoreError as exc:       # (StoreGone is not one: nothing to retry, it stops the daemon)
        return PollResult(0, "store_failed", str(exc), len(snapshots), time.perf_counter() - timer)
    return PollResult(poll_id, "ok", message, len(snapshots), time.perf_counter() - timer,
                      Counter(e.type for e in events), len(unreadable), complete=gone is None)


def _with_missing(client: QarnotClient, views, listed: list, tags) -> tuple[list, set[str] | None]:
    """A live listing leaves out the pools that finished or were deleted since the last poll: ask for each
    (a handful per poll; a 404 means deleted), or, when there are too many, list every pool after all."""
    missing = unaccounted(views, {p.uuid for p in listed})
    if len(missing) > LOOKUP_LIMIT:
        return client.list_pools(tags), None
    gone = set()
    for uuid in missing:
        try:
            found = client.lookup_pool(uuid)
        except (AuthError, ApiUnavailable):
            raise
        except ApiError:      # this pool's answer is broken: it stays as it was, asked again next poll
            continue
        if found is None:
            gone.add(uuid)
        else:
            listed.append(found)
    return listed, gone


def _failed(store: Store, clock, timer: float, outcome: str, message: str,
            retry_after: float | None = None) -> PollResult:
    """Record a poll that saw nothing; if even that cannot be written, say so (the write's reason wins)."""
    finished = clock()
    last = store.last_recorded
    finished = max(finished, last) if last else finished     # the coverage row never goes back in time
    started = finished - timedelta(seconds=time.perf_counter() - timer)
    try:
        poll_id = store.append_poll(started, finished, [], outcome=outcome, message=message)
    except StoreError as exc:
        return PollResult(0, "store_failed", f"{exc} (after: {message})", 0, time.perf_counter() - timer)
    return PollResult(poll_id, outcome, message, 0, time.perf_counter() - timer, retry_after=retry_after)


def _unreadable_message(unreadable: list[Unreadable]) -> str:
    if not unreadable:
        return ""
    return (f"{len(unreadable)} pool document(s) unreadable and quarantined (pool_unreadable events); "
            f"first: {unreadable[0].reason}")
