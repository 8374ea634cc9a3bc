"""The elastic pool model: how a Qarnot pool's slots follow its work.

Qarnot documents the elastic knobs, not the algorithm, so pool-tracker states one explicit model and
uses this single implementation everywhere: the emulator runs it live, the back-tester replays
demand traces through it.

The model, in continuous time (seconds):
- Task instances arrive, wait in one FIFO queue, and run one per slot for their duration.
- A slot is *starting* for `startup_delay` seconds after it is requested, then *ready*. A ready slot
  is busy (running an instance) or idle. Work goes to the most recently idled slot, so the slots
  idle longest are the first candidates for release.
- Every `resize_period` seconds (a tick; the grid restarts when settings change) the pool computes
  `target = clamp(busy + queued + min_idle_slots, min_total_slots, max_total_slots)` and compares it with
  `current = ready + starting`:
  - below target it requests `ceil(resize_factor * (target - current))` new slots;
  - above target it releases up to `ceil(resize_factor * (current - target))` idle slots, oldest idle
    first, each only once idle for at least `min_idle_time_seconds`, never below `min_total_slots`
    slots in total nor below `min_idle_slots` idle slots.
- A draining (closing) pool takes no new work, releases idle slots at once and ends with no slots.

Ticks where nothing can change are skipped, which keeps a 30-day replay fast without changing results.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Callable

from policies.settings import ElasticSettings

INF = math.inf
DEFAULT_STARTUP_DELAY = 60.0
_EPS = 1e-9

ChangeHook = Callable[[float, str, int, int], None]  # (at, "ready"|"starting"|"busy"|"queued", old, new)


class PoolModel:
    """One pool's slots and task instances, advanced through simulated time by `advance(until)`.

    Optional recorders, off by default so a long-running emulator stays flat in memory:
    `waits` collects `(wait_seconds, instances)` as instances start; `timeline` collects
    `(time, demand, ready)` whenever demand (busy + queued) or ready slots change.
    """

    def __init__(self, settings: ElasticSettings, start: float, startup_delay: float = DEFAULT_STARTUP_DELAY,
                 *, waits: list | None = None, timeline: list | None = None,
                 on_change: ChangeHook | None = None) -> None:
        self.settings = settings.validated()
        self.startup_delay = float(startup_delay)
        self.now = float(start)
        self.ready = self.starting = self.busy = self.queued = 0
        self.slot_seconds = 0.0   # integral of ready slots over time
        self.busy_seconds = 0.0   # integral of busy slots over time
        self.draining = False
        self.waits = waits
        self.timeline = timeline
        self.on_change = on_change
        self._origin = self.now      # tick grid origin
        self._next_tick = self.now   # next tick that may change something
        self._pending: list = []        # heap of future arrivals (at, seq, n, duration)
        self._seq = 0
        self._queue: deque = deque()    # waiting instances [submitted_at, n, duration], FIFO
        self._ends: list = []           # heap of (end_time, n) for running instances
        self._boots: deque = deque()    # (ready_at, n) for starting slots, in time order
        self._idle: deque = deque()     # [idle_since, n], oldest on the left
        if timeline is not None:
            timeline.append((self.now, 0, 0))

    # -- inputs ---------------------------------------------------------------------------------
    def submit(self, at: float, instances: int, duration: float) -> None:
        """Queue `instances` task instances of `duration` seconds arriving at `at` (non-decreasing)."""
        if instances <= 0 or self.draining:
            return
        if at < self.now - _EPS:
            raise ValueError(f"arrival at {at} is before the model's time {self.now}")
        self._seq += 1
        heapq.heappush(self._pending, (max(at, self.now), self._seq, int(instances), max(0.0, float(duration))))

    def set_settings(self, at: float, settings: ElasticSettings) -> None:
        """New elastic settings take effect at `at`; the tick grid restarts there."""
        self.advance(at)
        self.settings = settings.validated()
        self._origin = self._next_tick = self.now

    def drain(self, at: float) -> None:
        """Close the pool: drop waiting work, let running instances finish, release every slot."""
        self.advance(at)
        self.draining = True
        self._pending.clear()
        if self.queued:
            self._queue.clear()
            self._set("queued", 0)
        self._next_tick = self.now

    @property
    def closed(self) -> bool:
        return self.draining and not (self.ready or self.starting or self.busy)

    def waiting(self) -> list[tuple[float, int]]:
        """Instances still queued, as (submitted_at, count) groups."""
        return [(submitted, n) for submitted, n, _ in self._queue]

    @property
    def idle(self) -> int:
        return self.ready - self.busy

    # -- simulation -----------------------------------------------------------------------------
    def advance(self, until: float) -> None:
        """Run the model up to `until`, processing every arrival, completion, boot and tick on the way.

        The hot loop of every replay (~2 us per event), so counters are updated inline and the change
        hook is only called when one is set.
        """
        pending, ends, boots, queue, idle = self._pending, self._ends, self._boots, self._queue, self._idle
        hook, timeline, heappop = self.on_change, self.timeline, heapq.heappop
        while True:
            t = self._next_tick
            if pending and pending[0][0] < t:
                t = pending[0][0]
            if ends and ends[0][0] < t:
                t = ends[0][0]
            if boots and boots[0][0] < t:
                t = boots[0][0]
            if t > until:
                break
            if t > self.now:  # integrate the step function up to t
                dt = t - self.now
                self.slot_seconds += self.ready * dt
                self.busy_seconds += self.busy * dt
                self.now = t
            freed = 0         # slots that became idle at t: booted or finished
            changed = False
            if boots and boots[0][0] <= t:
                n = 0
                while boots and boots[0][0] <= t:
                    n += boots.popleft()[1]
                if hook:
                    self._set("starting", self.starting - n)
                    self._set("ready", self.ready + n)
                else:
                    self.starting -= n
                    self.ready += n
                freed = n
            if ends and ends[0][0] <= t:
                n = 0
                while ends and ends[0][0] <= t:
                    n += heappop(ends)[1]
                if hook:
                    self._set("busy", self.busy - n)
                else:
                    self.busy -= n
                freed += n
            if freed:
                if not self.draining and idle and idle[-1][0] == t:
                    idle[-1][1] += freed
                else:
                    idle.append([t, freed])
                changed = True
            if pending and pending[0][0] <= t:
                n = 0
                while pending and pending[0][0] <= t:
                    _, _, count, duration = heappop(pending)
                    queue.append([t, count, duration])
                    n += count
                if hook:
                    self._set("queued", self.queued + n)
                else:
                    self.queued += n
                changed = True
            if changed:
                if queue and idle:
                    self._dispatch()
                if timeline is not None:
                    self._record()
                period = self.settings.resize_period   # the next tick on the grid (inline _grid_ceil)
                tick = self._origin + math.ceil((t - self._origin) / period - _EPS) * period
                if tick < self._next_tick:
                    self._next_tick = tick
            if t >= self._next_tick - _EPS:
                self._tick()
        if until > self.now:
            self._integrate(until)

    def _integrate(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            self.slot_seconds += self.ready * dt
            self.busy_seconds += self.busy * dt
            self.now = t

    def _grid_ceil(self, t: float) -> float:
        period = self.settings.resize_period
        return self._origin + math.ceil((t - self._origin) / period - _EPS) * period

    def _set(self, what: str, value: int) -> None:
        if self.on_change is None:
            setattr(self, what, value)
            return
        old = getattr(self, what)
        setattr(self, what, value)
        if old != value:
            self.on_change(self.now, what, old, value)

    def _record(self) -> None:
        timeline = self.timeline
        if timeline is not None:
            demand, ready = self.busy + self.queued, self.ready
            last = timeline[-1]
            if last[1] != demand or last[2] != ready:
                if last[0] == self.now:
                    timeline[-1] = (self.now, demand, ready)
                else:
                    timeline.append((self.now, demand, ready))

    def _dispatch(self) -> None:
        """Start waiting instances on idle slots, most recently idled first."""
        queue, idle, ends, waits, now = self._queue, self._idle, self._ends, self.waits, self.now
        started = 0
        while queue and idle:
            group, slots = queue[0], idle[-1]
            n = group[1] if group[1] < slots[1] else slots[1]
            group[1] -= n
            slots[1] -= n
            if group[1] == 0:
                queue.popleft()
            if slots[1] == 0:
                idle.pop()
            started += n
            heapq.heappush(ends, (now + group[2], n))
            if waits is not None:
                waits.append((now - group[0], n))
        if started:
            if self.on_change:
                self._set("queued", self.queued - started)
                self._set("busy", self.busy + started)
            else:
                self.queued -= started
                self.busy += started

    def _tick(self) -> None:
        s = self.settings
        now, period = self.now, s.resize_period
        current = self.ready + self.starting
        if self.draining:
            self._release(self.idle, now)
            self._next_tick = INF
            self._record()
            return
        target = min(max(self.busy + self.queued + s.min_idle_slots, s.min_total_slots), s.max_total_slots)
        self._next_tick = INF
        if target > current:
            n = math.ceil(s.resize_factor * (target - current) - _EPS)
            if self.on_change:
                self._set("starting", self.starting + n)
            else:
                self.starting += n
            self._boots.append((now + self.startup_delay, n))
            self._next_tick = now + period
        elif target < current:
            limit = min(math.ceil(s.resize_factor * (current - target) - _EPS),
                        current - s.min_total_slots, self.idle - s.min_idle_slots)
            if limit > 0:
                released = self._release(limit, now - s.min_idle_time_seconds)
                if released:
                    self._record()
                if released == limit:
                    self._next_tick = now + period    # more may go at the next tick
                elif self._idle:                      # the rest is not idle long enough yet
                    eligible = self._idle[0][0] + s.min_idle_time_seconds
                    self._next_tick = self._grid_ceil(max(eligible, now + period))

    def _release(self, limit: int, idle_since_at_most: float) -> int:
        """Release up to `limit` idle slots idle since `idle_since_at_most` or earlier, oldest first."""
        idle, released = self._idle, 0
        while idle and released < limit and idle[0][0] <= idle_since_at_most + _EPS:
            n = min(idle[0][1], limit - released)
            idle[0][1] -= n
            if idle[0][1] == 0:
                idle.popleft()
            released += n
        if released:
            self._set("ready", self.ready - released)
        return released
