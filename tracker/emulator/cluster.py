"""The simulated Qarnot cluster behind the emulator: pools, their lifecycle, and the ground truth.

Each pool runs the shared pool model (`policies.model.PoolModel`) under a seeded workload, in
simulated time (`SimClock`: real time multiplied by `speed`); model times are epoch seconds, so weekly
scaling periods switch on the simulated calendar. Pools advance lazily when they are read,
which gives the same history as advancing them eagerly because the model is deterministic.

Every real change (state, ready/starting slots, busy and queued instances) lands in `ground_truth`, so
tests can compare what a tracker recorded with what really happened; a change of the active scaling
policy lands there as kind "policy" (old and new `activePolicyName`). The model counts slots; a pool's
nodes (running instances) are `ceil(ready slots / slotsPerNode)` (see `tracker.emulator.nodes`), and
every change of running cores (nodes x cores per node) lands in the ground truth as "cores".
A pool is sized by a scaling document or by legacy elastic settings (see `tracker.emulator.sizing`);
a pool created with a scaling document records its first active policy (old None) at creation.

Every arrival a pool runs is a task (`tracker.emulator.tasks`), timed by the pool model itself.

Deleting a pool drains it into `PendingDelete`; it stays listed for `delete_delay` simulated seconds,
then disappears ("deleted" in the ground truth).
"""
from __future__ import annotations

import itertools
import random
import threading
import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from policies.model import ModelConstants, PoolModel
from policies.scaling import Scaling
from policies.settings import ElasticSettings
from policies.workload import HOUR, PATTERNS, Workload
from tracker.emulator.nodes import NodeMeter
from tracker.emulator.sizing import capacity, seeded_scaling
from tracker.emulator.tasks import TaskBook

PROFILES = {"docker-batch": 4, "docker-batch-large": 16, "docker-nvidia": 8}  # profile -> cores per node
SCHEDULING_TYPES = ("Flex", "OnDemand", "Reserved")                           # as the SDK spells them
NOT_RUNNING = ("Closing", "Closed", "Failure", "PendingDelete")              # refuse commits and closes
DISPATCH_STEPS = (("PartiallyDispatched", 5.0), ("FullyDispatched", 15.0))    # state, seconds after creation


class SimClock:
    """Simulated seconds since the epoch: starts at real time and runs `speed` times faster."""

    def __init__(self, speed: float = 1.0, start: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.speed, self._monotonic = float(speed), monotonic
        self.start = time.time() if start is None else float(start)
        self._t0 = monotonic()

    def __call__(self) -> float:
        return self.start + (self._monotonic() - self._t0) * self.speed


@dataclass(frozen=True, slots=True)
class Truth:
    """One real change: state transitions use `old`/`new` state names, counts use integers."""
    at: float
    pool: str
    kind: str          # "state" | "ready" | "starting" | "busy" | "queued" | "cores" | "policy" | "deleted"
    old: object
    new: object


@dataclass
class EmulatedPool:
    uuid: str
    name: str
    profile: str
    settings: ElasticSettings
    created: float
    model: PoolModel
    workload: Workload | None = None
    tags: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    shortname: str | None = None
    state: str = "Submitted"
    previous_state: str | None = None
    transition_time: float = 0.0
    previous_transition_time: float | None = None
    last_modified: float = 0.0
    end_date: float | None = None
    errors: list = field(default_factory=list)
    fail_at: float | None = None
    close_at: float | None = None
    fed_until: float = 0.0
    extra: dict = field(default_factory=dict)   # document fields the emulator stores but does not interpret
    slots_per_node: int = 1
    scheduling_type: str = "Flex"
    delete_at: float | None = None
    nodes: NodeMeter | None = None
    order: int = 0          # creation sequence number: the listing order and the page tokens' key
    scaling: Scaling | None = None   # the scaling document sizing the pool; None: `settings` do (legacy)
    project_uuid: str | None = None   # `projectUuid` (see tracker.emulator.ledger)

    def __post_init__(self) -> None:
        if self.nodes is None:
            self.nodes = NodeMeter(self.slots_per_node, self.cores_per_node, self.created)

    @property
    def cores_per_node(self) -> int:
        return PROFILES.get(self.profile, 4)

    @property
    def cores_per_slot(self) -> int:
        return max(1, self.cores_per_node // self.slots_per_node)

    @property
    def running_instances(self) -> int:
        return self.nodes.count

    @property
    def running_cores(self) -> int:
        return self.nodes.count * self.cores_per_node

    @property
    def slot_capacity(self) -> int:
        """`totalSlotCapacity`: the slots of a static pool, the maximum slots of an elastic one, the
        largest slot count any policy allows for a scaling pool."""
        return self.settings.max_total_slots if self.scaling is None else capacity(self.scaling)

    def execution_seconds(self) -> float:
        """`executionTime`: node-seconds (the integral of running instances); see the README."""
        return self.nodes.node_seconds(self.model.now)

    def core_seconds(self) -> float:
        """The exact integral of running cores (the "cores" ground truth)."""
        return self.nodes.core_seconds(self.model.now)


class Cluster:
    """All pools and tasks of one emulated account; thread-safe (one lock around every operation)."""

    def __init__(self, clock: Callable[[], float], *, startup_delay: float = 60.0,
                 truth_limit: int = 2_000_000, delete_delay: float = 60.0, tasks: TaskBook | None = None) -> None:
        self.clock = clock
        self.startup_delay = startup_delay
        self.constants = ModelConstants(startup_delay=startup_delay)
        self.delete_delay = delete_delay
        self._created = itertools.count()
        self.pools: dict[str, EmulatedPool] = {}
        self.tasks = tasks or TaskBook()
        self.ground_truth: deque[Truth] = deque(maxlen=truth_limit)
        self.lock = threading.RLock()
        self.account = None   # tracker.emulator.account.Account: costs, budgets, quotas (set by Emulator)

    # -- building ---------------------------------------------------------------------------------
    def create_pool(self, name: str, profile: str, settings: ElasticSettings, *, at: float | None = None,
                    workload: Workload | None = None, tags=(), labels=None, shortname=None,
                    fail_at: float | None = None, close_at: float | None = None, extra=None,
                    uuid: str | None = None, record_waits: bool = False, slots_per_node: int = 1,
                    scheduling_type: str = "Flex", scaling: Scaling | None = None) -> EmulatedPool:
        """`settings` are served as `elasticProperty`; `scaling`, when given, sizes the pool instead."""
        with self.lock:
            created = self.clock() if at is None else at
            pool_id = uuid or str(uuidlib.uuid4())
            model = PoolModel(scaling or settings, created, self.constants, waits=[] if record_waits else None)
            pool = EmulatedPool(pool_id, name, profile, settings, created, model, workload, list(tags),
                                dict(labels or {}), shortname, transition_time=created, last_modified=created,
                                fail_at=fail_at, close_at=close_at, fed_until=created, extra=dict(extra or {}),
                                slots_per_node=slots_per_node, scheduling_type=scheduling_type,
                                order=next(self._created), scaling=scaling)
            model.on_change = lambda t, kind, old, new: self._on_model_change(pool, t, kind, old, new)
            model.on_policy = lambda t, old, new: self.ground_truth.append(Truth(t, pool.uuid, "policy", old, new))
            model.on_dispatch = self.tasks.dispatched
            self.pools[pool_id] = pool
            self.ground_truth.append(Truth(created, pool_id, "state", None, "Submitted"))
            if scaling is not None:
                self.ground_truth.append(Truth(created, pool_id, "policy", None, model.active_policy_name))
            if self.account is not None:
                self.account.created(pool)
            return pool

    def populate(self, count: int, seed: int, start: float) -> None:
        """A varied demo cluster: every workload pattern, static, elastic and scaling pools, a few failures.

        Every 8th pool (from the 6th) is static and every 4th (from the 3rd) multi-slot; every 8th from
        the 2nd is sized by a scaling document, alternately an Always ManagedTasksQueue policy and a
        weekday 08:00-18:00 UTC Fixed policy before it. So even a small cluster has each kind; their
        shape comes from other generators, so the other pools' draws stay as they were.
        """
        rng, shape = random.Random(seed), random.Random(seed * 7919 + 17)
        plan = random.Random(seed * 104_729 + 31)
        for i in range(count):
            pattern = PATTERNS[i % len(PATTERNS)]
            profile = rng.choice(list(PROFILES))
            if rng.random() < 0.15:
                size = rng.randint(1, 8)
                settings = ElasticSettings(size, size, 0, 0, 1.0, 90, is_elastic=False)
            else:
                settings = ElasticSettings(
                    min_total_slots=rng.choice((0, 0, 1, 2)), max_total_slots=rng.choice((10, 20, 40, 80)),
                    min_idle_slots=rng.choice((0, 0, 1, 4)), min_idle_time_seconds=rng.choice((0, 60, 300, 900)),
                    resize_factor=rng.choice((0.25, 0.5, 1.0)), resize_period=rng.choice((90, 90, 120, 300)))
            slots_per_node = shape.choice((2, 4)) if i % 4 == 2 else 1
            if i % 8 == 5 and settings.is_elastic:
                size = shape.randint(1, 8)
                settings = ElasticSettings(size, size, 0, 0, 1.0, 90, is_elastic=False)
            scaling = seeded_scaling(plan, weekly=i % 16 == 9) if i % 8 == 1 else None
            if scaling is not None:       # created as the SDK does it: one node, not elastic, plus `scaling`
                settings = ElasticSettings(1, 1, 0, 0, 1.0, 90, is_elastic=False)
            if not settings.is_elastic:   # a static pool's size is in nodes; the model counts slots
                slots = settings.max_total_slots * slots_per_node
                settings = ElasticSettings(slots, slots, 0, 0, 1.0, 90, is_elastic=False)
            self.create_pool(
                f"{pattern}-{i:05d}", profile, settings, at=start - rng.uniform(0, 120),
                workload=Workload(pattern, seed * 100_003 + i, rng.choice((0.5, 1.0, 2.0))),
                tags=[pattern, rng.choice(("team-a", "team-b", "team-c"))],
                labels={"env": rng.choice(("prod", "dev")), "pattern": pattern},
                fail_at=start + rng.uniform(600, 2 * 86400) if rng.random() < 0.03 else None,
                close_at=start + rng.uniform(3600, 7 * 86400) if rng.random() < 0.05 else None,
                uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), slots_per_node=slots_per_node,
                scheduling_type=shape.choice(("Flex", "Flex", "Flex", "OnDemand", "Reserved")), scaling=scaling)

    def add_finished(self, count: int, seed: int, start: float) -> None:
        """`count` pools that ran and ended before `start` (about one in ten failed): an account's history,
        which a listing of every pool carries at each poll and a listing of live pools skips."""
        rng = random.Random(seed * 15_485_863 + 7)
        for i in range(count):
            created = start - rng.uniform(7 * 3600, 30 * 86400)   # so it has ended by `start`
            end = created + rng.uniform(600, 6 * 3600)
            failed = rng.random() < 0.1
            self.create_pool(f"finished-{i:05d}", rng.choice(list(PROFILES)),
                             ElasticSettings(0, rng.choice((10, 20, 40)), 0, 0, 1.0, 90), at=created,
                             tags=["finished", rng.choice(("team-a", "team-b", "team-c"))],
                             fail_at=end if failed else None, close_at=None if failed else end,
                             uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)))

    # -- time -------------------------------------------------------------------------------------
    def advance(self, pool: EmulatedPool, now: float) -> None:
        """Bring one pool up to `now`: scripted events, workload arrivals, the elastic model."""
        with self.lock:
            for state, delay in DISPATCH_STEPS:  # no slot can be ready this early, so order is safe
                if pool.created + delay <= now and _order(state) > _order(pool.state):
                    self._transition(pool, state, pool.created + delay)
            for when, action in sorted((t, a) for t, a in ((pool.fail_at, "fail"), (pool.close_at, "close"))
                                       if t is not None and t <= now):
                self._feed_and_run(pool, when)
                if action == "fail":
                    pool.fail_at = None
                    self._fail(pool, when)
                else:
                    pool.close_at = None
                    self.close_pool(pool.uuid, when)
            self._feed_and_run(pool, now)

    def _feed_and_run(self, pool: EmulatedPool, until: float) -> None:
        if pool.workload is not None and not pool.model.draining:
            # Submit a whole hour ahead: the model holds future arrivals and takes each at its time.
            horizon = (until // HOUR + 1) * HOUR
            if pool.fed_until < horizon:
                for at, n, duration in pool.workload.arrivals(pool.fed_until, horizon):
                    task = self.tasks.add(pool.uuid, pool.profile, at, n, duration, name=f"{pool.name}-task")
                    pool.model.submit(at, n, duration, task.key)
                pool.fed_until = horizon
        pool.model.advance(until)

    def require(self, pool_id: str) -> EmulatedPool:
        """The pool, or LookupError (the API's 404)."""
        pool = self.pool(pool_id)
        if pool is None:
            raise LookupError(f"pool {pool_id} not found")
        return pool

    def pool(self, pool_id: str, now: float | None = None) -> EmulatedPool | None:
        with self.lock:
            now = self.clock() if now is None else now
            if self.account is not None:
                self.account.catch_up(now)
            pool = self.pools.get(pool_id)
            if pool is not None and pool.delete_at is not None and pool.delete_at <= now:
                self._forget(pool)
                return None
            if pool is not None:
                self.advance(pool, now)
            return pool

    def all_pools(self, now: float | None = None) -> list[EmulatedPool]:
        with self.lock:
            now = self.clock() if now is None else now
            if self.account is not None:
                self.account.catch_up(now)
            for pool in [p for p in self.pools.values() if p.delete_at is not None and p.delete_at <= now]:
                self._forget(pool)
            for pool in self.pools.values():
                self.advance(pool, now)
            return list(self.pools.values())

    # -- commands from the API --------------------------------------------------------------------
    def set_settings(self, pool_id: str, settings: ElasticSettings | Scaling) -> None:
        """A scaling document sizes the pool from now on; legacy elastic settings become `pool.settings`
        and size the pool only while it has no scaling document (see `tracker.emulator.sizing`)."""
        with self.lock:
            pool = self.pool(pool_id)
            now = self.clock()
            if isinstance(settings, ElasticSettings):
                pool.settings = settings.validated()
                if pool.scaling is not None:
                    return
            else:
                pool.scaling = settings
            # the account may run the model on a copy capped to the pool's quota share (emulator/quotas.py)
            pool.model.set_settings(now, settings if self.account is None else self.account.sizing(pool, settings))
            pool.last_modified = now

    def submit_task(self, pool_id: str, instances: int, duration: float, *, name: str | None = None,
                    extra: dict | None = None):
        """A task submitted through the API: it arrives now. Returns the task."""
        with self.lock:
            pool = self.require(pool_id)
            if pool.model.draining:
                raise ValueError(f"pool {pool_id} is not running (state {pool.state}): it takes no new tasks")
            task = self.tasks.add(pool.uuid, pool.profile, pool.model.now, instances, duration, name=name, extra=extra)
            pool.model.submit(pool.model.now, instances, duration, task.key)
            pool.model.advance(pool.model.now)
            return task

    def close_pool(self, pool_id: str, at: float | None = None) -> None:
        with self.lock:
            pool = self.pools[pool_id]
            at = self.clock() if at is None else at
            if pool.state in NOT_RUNNING:
                return
            self._drain(pool, at)
            self._transition(pool, "Closing", at)
            self._maybe_closed(pool, at)

    def delete_pool(self, pool_id: str) -> None:
        """Close (if running) and mark for deletion: `PendingDelete` now, gone `delete_delay` seconds later."""
        with self.lock:
            pool = self.pool(pool_id)
            if pool is None or pool.state == "PendingDelete":
                return
            at = self.clock()
            self._drain(pool, at)
            pool.close_at = pool.fail_at = None
            self._transition(pool, "PendingDelete", at)
            pool.end_date = pool.end_date or at
            pool.delete_at = at + self.delete_delay

    def _drain(self, pool: EmulatedPool, at: float) -> None:
        """Stop taking work: running instances finish, queued ones (and arrivals fed ahead) are dropped."""
        pool.model.drain(at)
        self.tasks.cancel_queued(pool.uuid, at)

    def _forget(self, pool: EmulatedPool) -> None:
        pool.model.advance(pool.delete_at)
        if self.account is not None:
            self.account.forgotten(pool)
        del self.pools[pool.uuid]
        self.ground_truth.append(Truth(pool.delete_at, pool.uuid, "deleted", pool.state, None))

    # -- lifecycle --------------------------------------------------------------------------------
    def _on_model_change(self, pool: EmulatedPool, at: float, kind: str, old: int, new: int) -> None:
        self.ground_truth.append(Truth(at, pool.uuid, kind, old, new))
        if kind == "ready":
            cores = pool.nodes.set_slots(at, new)
            if cores is not None:
                self.ground_truth.append(Truth(at, pool.uuid, "cores", *cores))
        if kind not in ("ready", "starting") or pool.state in ("Failure", "Closed", "PendingDelete"):
            return
        if pool.model.draining:
            self._maybe_closed(pool, at)
        elif pool.model.ready:
            self._transition(pool, "PartiallyExecuting" if pool.model.starting else "FullyExecuting", at)

    def _maybe_closed(self, pool: EmulatedPool, at: float) -> None:
        if pool.state == "Closing" and pool.model.closed:
            self._transition(pool, "Closed", at)
            pool.end_date = at

    def _fail(self, pool: EmulatedPool, at: float) -> None:
        if pool.state in NOT_RUNNING:
            return
        pool.errors = [{"code": "POOL_INSTANCE_FAILURE",
                        "message": "Pool instance failed: the node stopped responding",
                        "debug": "emulated failure"}]
        self._drain(pool, at)
        self._transition(pool, "Failure", at)
        pool.end_date = at

    def _transition(self, pool: EmulatedPool, state: str, at: float) -> None:
        if state == pool.state:
            return
        self.ground_truth.append(Truth(at, pool.uuid, "state", pool.state, state))
        pool.previous_state, pool.previous_transition_time = pool.state, pool.transition_time
        pool.state, pool.transition_time, pool.last_modified = state, at, at

    # -- ground truth helpers for tests -----------------------------------------------------------
    def billed_slot_seconds(self, pool_id: str, start: float, end: float) -> float:
        """Slot-seconds billed (ready + starting) over [start, end], from the ground truth."""
        with self.lock:
            changes = [t for t in self.ground_truth if t.pool == pool_id and t.kind in ("ready", "starting")]
        total, slots, last = 0.0, {"ready": 0, "starting": 0}, start
        for change in changes:
            if change.at > end:
                break
            if change.at > start:
                total += sum(slots.values()) * (change.at - last)
                last = change.at
            slots[change.kind] = change.new
        return total + sum(slots.values()) * (end - last)

    def transitions(self, pool_id: str | None = None) -> list[Truth]:
        with self.lock:
            return [t for t in self.ground_truth if t.kind == "state" and (pool_id is None or t.pool == pool_id)]


_STATE_ORDER = ("Submitted", "PartiallyDispatched", "FullyDispatched")


def _order(state: str) -> int:
    return _STATE_ORDER.index(state) if state in _STATE_ORDER else len(_STATE_ORDER)

