"""One poll cycle: list pools -> derive events -> append them with a coverage row. Success or not,
the poll is recorded, so a gap in observation is never mistaken for "nothing changed"."""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

from tracker.api import ApiError, QarnotClient
from tracker.derive import derive_poll
from tracker.store import Store


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def server_clock(client: QarnotClient) -> Callable[[], datetime]:
    """Time as the API tells it: right for an emulator whose simulated time runs faster than ours."""
    return lambda: client.server_time or utc_now()


@dataclass(frozen=True)
class PollResult:
    poll_id: int
    outcome: str                  # "ok" or the failure's reason code ("unavailable", "unauthorized", ...)
    message: str
    pools_seen: int
    duration_seconds: float
    events_by_type: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def events_written(self) -> int:
        return sum(self.events_by_type.values())


def poll_once(client: QarnotClient, store: Store, *, tags: Sequence[str] = (),
              keep: Callable = lambda snapshot: True, clock: Callable[[], datetime] = utc_now) -> PollResult:
    """Poll, derive and append; API trouble becomes a recorded failed poll, not an exception."""
    with gc_paused():
        return _poll(client, store, tags, keep, clock)


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


def _poll(client, store, tags, keep, clock) -> PollResult:
    started, timer = clock(), time.perf_counter()
    try:
        snapshots = [s for s in client.list_pools(tags) if keep(s)]
    except ApiError as exc:
        poll_id = store.append_poll(started, clock(), [], outcome=exc.reason, message=str(exc))
        return PollResult(poll_id, exc.reason, str(exc), 0, time.perf_counter() - timer)
    finished = clock()  # the observation instant (the end of the listing)
    events = derive_poll(store.views, snapshots, finished)
    poll_id = store.append_poll(started, finished, events, pools_seen=len(snapshots))
    return PollResult(poll_id, "ok", "", len(snapshots), time.perf_counter() - timer,
                      Counter(e.type for e in events))
