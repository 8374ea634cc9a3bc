"""The pool model: how a Qarnot pool's slots follow its work under its `scaling` (or legacy elastic) settings.

Qarnot documents the knobs and a few rules, not the whole algorithm, so pool-tracker states one
explicit model and uses this single implementation everywhere: the emulator runs it live, the
back-tester replays demand traces through it. What Qarnot does not publish is a `ModelConstants` field.

The model, in continuous time (seconds; model time + `epoch` = epoch seconds, for weekly periods):
- The pool runs a `policies.scaling.Scaling`; legacy `ElasticSettings` run as one Always
  ManagedTasksQueue policy whose `resizePeriod` is the tick period. The first policy enabled now
  applies; at each period boundary the model switches policy (the tick grid restarts there). With no
  policy enabled the pool holds 0 slots.
- Task instances arrive, wait in one FIFO queue, and run one per slot for their duration.
- A slot is *starting* for `startup_delay` seconds after it is requested, then *ready*. A ready slot
  is busy (running an instance) or idle. Work goes to the most recently idled slot, so the slots
  idle longest are the first candidates for release. Starting and ready slots are billed.
- Every period (a tick) the pool computes
  `target = clamp(busy + queued + min_idle_slots, min_total_slots, max_total_slots)` and compares it with
  `current = ready + starting`:
  - below target it requests `min(target - current, ceil(scaling_factor * max_total_slots))` new slots
    (Qarnot's documented step: a share of maxTotalSlots per scale-up);
  - above target it releases up to `min(current - target, ceil(release_factor * max_total_slots))` idle
    slots (release_factor defaults to the scaling factor: the same step as scale-up), oldest idle first,
    each only once idle for at least `min_idle_time_seconds`, never below `min_idle_slots` idle slots.
- A Fixed policy is min = max = slotsCount with no idle reserve and no idle time: the next tick starts
  the whole gap at once, or releases every idle slot above slotsCount at once (busy ones as they finish).
- A draining (closing) pool takes no new work, releases idle slots at once and ends with no slots.

Ticks where nothing can change are skipped, which keeps a 30-day replay fast without changing results.

The module is fully typed so that mypyc can compile it (see setup.py); it runs the same, only slower,
when it is not compiled.
"""
from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Final, Union

from policies.scaling import FixedPolicy, Policy, Scaling
from policies.settings import MIN_RESIZE_PERIOD, ElasticSettings

INF: Final = math.inf
DEFAULT_STARTUP_DELAY: Final = 60.0
_EPS: Final = 1e-9
_WHOLE_GAP: Final = 1 << 40   # a step no gap reaches: a Fixed policy moves in one tick

ChangeHook = Callable[[float, str, int, int], None]  # (at, "ready"|"starting"|"busy"|"queued", old, new)
PolicyHook = Callable[[float, Union[str, None], Union[str, None]], None]  # (at, old name, new name)
DispatchHook = Callable[[int, float, int], None]  # (task key, at, instances started): the emulator's task timings
Arrival = tuple[float, int, float, int]           # (at, instances, duration, task key; -1: anonymous)
Sizing = Union[ElasticSettings, Scaling]


@dataclass(frozen=True)
class ModelConstants:
    """What Qarnot does not publish, in one place; each default is pool-tracker's documented assumption.

    startup_delay: seconds a requested slot is starting (billed, not yet usable) before it is ready.
    release_factor: share of maxTotalSlots released at most per period; None: the policy's scaling
        factor, i.e. the same step as scale-up.
    period: the tick period of a scaling document, which carries no resizePeriod; Qarnot's documented
        minimum resize period (legacy elastic settings tick at their own resizePeriod).
    """
    startup_delay: float = DEFAULT_STARTUP_DELAY
    release_factor: float | None = None
    period: float = float(MIN_RESIZE_PERIOD)

    def __post_init__(self) -> None:
        if self.startup_delay < 0 or self.period <= 0:
            raise ValueError(f"startup_delay must be >= 0 and period > 0, got {self}")
        if self.release_factor is not None and not 0 < self.release_factor <= 1:
            raise ValueError(f"release_factor must be in (0, 1] or None, got {self.release_factor}")


DEFAULTS: Final = ModelConstants()


def _arrival_time(arrival: Arrival) -> float:
    return arrival[0]


class _Waiting:
    """Instances of one task still in the queue."""
    __slots__ = ("submitted", "count", "duration", "task")

    def __init__(self, submitted: float, count: int, duration: float, task: int) -> None:
        self.submitted = submitted
        self.count = count
        self.duration = duration
        self.task = task


class _Idle:
    """Slots that became idle at the same moment."""
    __slots__ = ("since", "count")

    def __init__(self, since: float, count: int) -> None:
        self.since = since
        self.count = count


class Meter:
    """Demand d = busy + queued against supply s = ready slots, summed up as the model runs.

    These are the raw integrals behind the SPEC elasticity metrics (see `policies.backtest`); keeping
    them here means a replay needs no timeline to be scored, which halves its cost. Instability samples
    d and s every `step` seconds from `start` and counts the samples where they moved differently.
    """

    def __init__(self, start: float, step: float) -> None:
        self.start = float(start)
        self.step = float(step)
        self.short_area = 0.0    # integral of max(d - s, 0) / max(d, 1)
        self.excess_area = 0.0   # integral of max(s - d, 0) / max(d, 1)
        self.short_time = 0.0    # time with d > s
        self.excess_time = 0.0   # time with s > d
        self.samples = 0         # grid points passed
        self.unstable = 0        # grid points where d and s moved in different directions since the last
        self._last_demand = 0
        self._last_supply = 0

    def add(self, t0: float, t1: float, demand: int, supply: int) -> None:
        """d and s held these values over [t0, t1)."""
        dt = t1 - t0
        if demand > supply:
            self.short_area += (demand - supply) / max(demand, 1) * dt
            self.short_time += dt
        elif supply > demand:
            self.excess_area += (supply - demand) / max(demand, 1) * dt
            self.excess_time += dt
        first = math.ceil((t0 - self.start) / self.step - _EPS)   # grid points inside [t0, t1)
        after = math.ceil((t1 - self.start) / self.step - _EPS)
        if after > first:
            if self.samples and _sign(demand - self._last_demand) != _sign(supply - self._last_supply):
                self.unstable += 1
            self.samples += after - first
            self._last_demand, self._last_supply = demand, supply

    @property
    def instability(self) -> float:
        """Percent of sampling steps where supply and demand moved in different directions."""
        return 100 * self.unstable / (self.samples - 1) if self.samples >= 3 else 0.0


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


class PoolModel:
    """One pool's slots and task instances, advanced through simulated time by `advance(until)`.

    `settings` is a `Scaling` or legacy `ElasticSettings`; `epoch` is the epoch second at model time 0
    (0 when model times are epoch seconds, as in the emulator), used only for weekly periods.
    Optional recorders, off by default so a long-running emulator stays flat in memory:
    `waits` collects `(wait_seconds, instances)` as instances start; `timeline` collects
    `(time, demand, ready)` whenever demand (busy + queued) or ready slots change; a `Meter` sums
    demand against supply. `on_change` hears every counter change, `on_policy` every change of the
    active policy's name (the API's `activePolicyName`), `on_dispatch` every start of instances of a task
    submitted with a key (they end `duration` seconds later: the emulator derives task timings from it).
    """

    def __init__(self, settings: Sizing, start: float, constants: ModelConstants = DEFAULTS,
                 *, epoch: float = 0.0, waits: list[tuple[float, int]] | None = None,
                 timeline: list[tuple[float, int, int]] | None = None,
                 meter: Meter | None = None, on_change: ChangeHook | None = None,
                 on_policy: PolicyHook | None = None, on_dispatch: DispatchHook | None = None) -> None:
        self.constants = constants
        self.startup_delay = float(constants.startup_delay)
        self.epoch = float(epoch)
        self.now = float(start)
        self.ready = self.starting = self.busy = self.queued = 0
        self.slot_seconds = 0.0   # billed: integral of ready + starting slots over time
        self.ready_seconds = 0.0  # integral of ready slots (running cores, the API's executionTime)
        self.busy_seconds = 0.0   # integral of busy slots over time
        self.draining = False
        self.waits = waits
        self.timeline = timeline
        self.meter = meter
        self.on_change = on_change
        self.on_dispatch = on_dispatch
        self.on_policy: PolicyHook | None = None   # told of changes after the first policy
        self.policy: Policy | None = None          # the policy in force (None: none enabled, 0 slots)
        self._pending: deque[Arrival] = deque()            # arrivals (at, n, duration, task) in time order
        self._queue: deque[_Waiting] = deque()             # FIFO
        self._ends: list[tuple[float, int]] = []           # heap of (end_time, n) for running instances
        self._boots: deque[tuple[float, int]] = deque()    # (ready_at, n) for starting slots, in time order
        self._idle: deque[_Idle] = deque()                 # oldest on the left
        self._use(settings)
        self.on_policy = on_policy
        if timeline is not None:
            timeline.append((self.now, 0, 0))

    def _use(self, settings: Sizing) -> None:
        """Take new settings: the policy enabled now applies from now, on a fresh tick grid."""
        if isinstance(settings, Scaling):
            self.scaling = settings
            self._period: float = float(self.constants.period)
        else:
            self.scaling = Scaling.from_elastic(settings.validated())
            self._period = float(settings.resize_period)
        self.settings = settings
        self._enter(self.epoch + self.now, True)

    def _enter(self, at_epoch: float, always: bool) -> None:
        """Apply the policy enabled at epoch second `at_epoch` (a boundary, or a settings change) and
        find the next boundary. The knobs are copied into plain numbers for the hot loop."""
        scaling = self.scaling
        policy = scaling.policy_at(at_epoch)
        boundary = scaling.next_change_after(at_epoch)
        self._boundary: float = boundary                     # epoch seconds, exact
        self._next_switch: float = boundary - self.epoch     # model time
        if policy == self.policy and not always:
            return
        old, self.policy = self.policy, policy
        if policy is None or isinstance(policy, FixedPolicy):
            count = 0 if policy is None else policy.slots_count
            self._min_total: int = count
            self._max_total: int = count
            self._min_idle: int = 0
            self._min_idle_time: float = 0.0
            self._up_step: int = _WHOLE_GAP
            self._down_step: int = _WHOLE_GAP
        else:
            release = self.constants.release_factor
            self._min_total = policy.min_total_slots
            self._max_total = policy.max_total_slots
            self._min_idle = policy.min_idle_slots
            self._min_idle_time = float(policy.min_idle_time_seconds)
            self._up_step = max(1, math.ceil(policy.scaling_factor * policy.max_total_slots - _EPS))
            self._down_step = max(1, math.ceil((policy.scaling_factor if release is None else release)
                                               * policy.max_total_slots - _EPS))
        self._origin = self.now      # tick grid origin
        self._next_tick = self.now   # next tick that may change something
        old_name = None if old is None else old.name
        new_name = None if policy is None else policy.name
        if self.on_policy is not None and old_name != new_name:
            self.on_policy(self.now, old_name, new_name)

    @property
    def active_policy_name(self) -> str | None:
        return None if self.policy is None else self.policy.name

    # -- inputs ---------------------------------------------------------------------------------
    def submit(self, at: float, instances: int, duration: float, task: int = -1) -> None:
        """Queue `instances` task instances of `duration` seconds arriving at `at` (non-decreasing);
        `task` (>= 0) names them to `on_dispatch`."""
        if instances <= 0 or self.draining:
            return
        if at < self.now - _EPS:
            raise ValueError(f"arrival at {at} is before the model's time {self.now}")
        arrival = (max(float(at), self.now), int(instances), max(0.0, float(duration)), int(task))
        if self._pending and arrival[0] < self._pending[-1][0]:   # out of order: rare, keep FIFO among equals
            bisect.insort(self._pending, arrival, key=_arrival_time)
        else:
            self._pending.append(arrival)

    def set_settings(self, at: float, settings: Sizing) -> None:
        """New settings (a Scaling or legacy ElasticSettings) take effect at `at`; the tick grid restarts there."""
        self.advance(at)
        self._use(settings)

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
        return [(group.submitted, group.count) for group in self._queue]

    @property
    def idle(self) -> int:
        return self.ready - self.busy

    # -- simulation -----------------------------------------------------------------------------
    def advance(self, until: float) -> None:
        """Run the model up to `until`, processing every arrival, completion, boot and tick on the way.

        The hot loop of every replay, so counters are updated inline and the change hook is only
        called when one is set.
        """
        pending, ends, boots, queue, idle = self._pending, self._ends, self._boots, self._queue, self._idle
        hook = self.on_change is not None
        heappop = heapq.heappop   # a local: a module attribute lookup per call is measurable here
        while True:
            next_arrival = pending[0][0] if pending else INF
            next_end = ends[0][0] if ends else INF
            next_boot = boots[0][0] if boots else INF
            t = self._next_tick
            if self._next_switch < t:
                t = self._next_switch
            if next_arrival < t:
                t = next_arrival
            if next_end < t:
                t = next_end
            if next_boot < t:
                t = next_boot
            if t > until:
                break
            if t > self.now:
                self._integrate(t)
            freed = 0         # slots that became idle at t: booted or finished
            changed = False
            if next_boot <= t:
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
            if next_end <= t:
                n = 0
                while ends and ends[0][0] <= t:
                    n += heappop(ends)[1]
                if hook:
                    self._set("busy", self.busy - n)
                else:
                    self.busy -= n
                freed += n
            if freed:
                if not self.draining and idle and idle[-1].since == t:
                    idle[-1].count += freed
                else:
                    idle.append(_Idle(t, freed))
                changed = True
            if next_arrival <= t:
                n = 0
                while pending and pending[0][0] <= t:
                    arrival = pending.popleft()
                    queue.append(_Waiting(t, arrival[1], arrival[2], arrival[3]))
                    n += arrival[1]
                if hook:
                    self._set("queued", self.queued + n)
                else:
                    self.queued += n
                changed = True
            if changed:
                if queue and idle:
                    self._dispatch()
                self._record()
                tick = self._grid_ceil(t)
                if tick < self._next_tick:
                    self._next_tick = tick
            if t >= self._next_switch:
                self._enter(self._boundary, False)
            if t >= self._next_tick - _EPS:
                self._tick()
        if until > self.now:
            self._integrate(until)

    def _integrate(self, t: float) -> None:
        """Carry the step functions from now up to t, when the next thing happens."""
        dt = t - self.now
        self.slot_seconds += (self.ready + self.starting) * dt
        self.ready_seconds += self.ready * dt
        self.busy_seconds += self.busy * dt
        if self.meter is not None:
            self.meter.add(self.now, t, self.busy + self.queued, self.ready)
        self.now = t

    def _grid_ceil(self, t: float) -> float:
        return self._origin + math.ceil((t - self._origin) / self._period - _EPS) * self._period

    def _set(self, what: str, value: int) -> None:
        """Change one counter and tell the change hook (the emulator's state machine)."""
        old: int = getattr(self, what)
        setattr(self, what, value)
        if old != value and self.on_change is not None:
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
        """Start waiting instances on idle slots, most recently idled first; one completion per task."""
        queue, idle, now = self._queue, self._idle, self.now
        started = 0
        while queue and idle:
            group = queue[0]
            n = 0
            while idle and n < group.count:
                slots = idle[-1]
                take = min(group.count - n, slots.count)
                slots.count -= take
                n += take
                if slots.count == 0:
                    idle.pop()
            group.count -= n
            if group.count == 0:
                queue.popleft()
            started += n
            heapq.heappush(self._ends, (now + group.duration, n))
            if self.waits is not None:
                self.waits.append((now - group.submitted, n))
            if self.on_dispatch is not None and group.task >= 0:
                self.on_dispatch(group.task, now, n)
        if started:
            if self.on_change is not None:
                self._set("queued", self.queued - started)
                self._set("busy", self.busy + started)
            else:
                self.queued -= started
                self.busy += started

    def _tick(self) -> None:
        now = self.now
        current = self.ready + self.starting
        self._next_tick = INF
        if self.draining:
            self._release(self.idle, now)
            self._record()
            return
        target = min(max(self.busy + self.queued + self._min_idle, self._min_total), self._max_total)
        if target > current:
            n = min(target - current, self._up_step)
            if self.on_change is not None:
                self._set("starting", self.starting + n)
            else:
                self.starting += n
            self._boots.append((now + self.startup_delay, n))
            self._next_tick = now + self._period
        elif target < current:
            limit = min(current - target, self._down_step, self.idle - self._min_idle)
            if limit > 0:
                released = self._release(limit, now - self._min_idle_time)
                if released:
                    self._record()
                if released == limit:
                    self._next_tick = now + self._period    # more may go at the next tick
                elif self._idle:                            # the rest is not idle long enough yet
                    eligible = self._idle[0].since + self._min_idle_time
                    self._next_tick = self._grid_ceil(max(eligible, now + self._period))

    def _release(self, limit: int, idle_since_at_most: float) -> int:
        """Release up to `limit` idle slots idle since `idle_since_at_most` or earlier, oldest first."""
        idle, released = self._idle, 0
        while idle and released < limit and idle[0].since <= idle_since_at_most + _EPS:
            n = min(idle[0].count, limit - released)
            idle[0].count -= n
            if idle[0].count == 0:
                idle.popleft()
            released += n
        if released:
            if self.on_change is not None:
                self._set("ready", self.ready - released)
            else:
                self.ready -= released
        return released
