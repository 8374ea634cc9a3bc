"""Computing quotas per scheduling type, and the cap that really holds pools under them.

A quota (`Limit`) bounds the cores and the instances (nodes) of all the account's pools of one
scheduling type. The emulator enforces it without touching the shared model's rules: it runs each
pool's model on a *capped copy* of the pool's own sizing (every policy's max, min and slotsCount
clipped to the pool's share of the quota), while the document keeps the pool's own settings.

Shares are recomputed on a fixed grid of simulated time (every `period` seconds, from the epoch), with
every pool brought to the grid instant first, so the result does not depend on when anyone reads:
1. usage: nodes for each pool's ready + starting slots (a starting node already holds its cores);
2. demand first: in creation order, each pool gets the nodes its model's target needs now
   (`clamp(busy + queued + minIdleSlots, minTotalSlots, maxTotalSlots)` of its active policy),
   as far as the quota's headroom goes;
3. the rest of the headroom, in creation order, up to each pool's largest maximum.
A pool whose share covers its largest maximum runs its own sizing, untouched (so a quota that never
binds changes nothing); otherwise its model gets the capped copy (which restarts its tick grid).
A pool created between grid instants gets what no other pool holds; a commit between grid instants
stays within the pool's share until the next one. The sum of the shares never exceeds the quota, so
ready + starting nodes never do.

A pool whose demand exceeds its share is *held at quota*: its document's `errors` carries
`{"code": "COMPUTING_QUOTA_REACHED", ...}` until it is not (an assumption: the real API's way of
saying so is not published), and the ground truth records kind "quota" (old, new: held or not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from policies.model import PoolModel
from policies.scaling import FixedPolicy, Scaling
from policies.settings import ElasticSettings

UNLIMITED = 2**31 - 1   # what the quota endpoints report for a scheduling type without a limit (assumption)
QUOTA_ERROR_CODE = "COMPUTING_QUOTA_REACHED"
KEYS = {"Flex": "flex", "OnDemand": "onDemand", "Reserved": "reserved"}


@dataclass(frozen=True)
class Limit:
    max_cores: int
    max_instances: int

    def __post_init__(self) -> None:
        if self.max_cores < 0 or self.max_instances < 0:
            raise ValueError(f"quota limits must be >= 0, got {self}")


@dataclass(frozen=True)
class Quotas:
    """Limits per scheduling type (None: unlimited), evaluated every `period` simulated seconds."""
    flex: Limit | None = None
    on_demand: Limit | None = None
    reserved: Limit | None = None
    period: float = 90.0

    def limit(self, scheduling_type: str) -> Limit | None:
        return {"Flex": self.flex, "OnDemand": self.on_demand, "Reserved": self.reserved}.get(scheduling_type)

    @classmethod
    def from_dict(cls, body: dict) -> "Quotas":
        """`{"Flex": {"maxCores": 64, "maxInstances": 16}, ...}` (any of the three; `period` optional)."""
        def limit(key):
            value = body.get(key)
            return None if value is None else Limit(int(value["maxCores"]), int(value["maxInstances"]))
        return cls(limit("Flex"), limit("OnDemand"), limit("Reserved"), float(body.get("period", 90.0)))


def capped(settings, slots: int):
    """A copy of the sizing whose every policy stays within `slots`."""
    if isinstance(settings, ElasticSettings):
        return replace(settings, max_total_slots=min(settings.max_total_slots, slots),
                       min_total_slots=min(settings.min_total_slots, slots))
    policies = []
    for policy in settings.policies:
        if isinstance(policy, FixedPolicy):
            policies.append(replace(policy, slots_count=min(policy.slots_count, slots)))
        else:
            policies.append(replace(policy, max_total_slots=min(policy.max_total_slots, slots),
                                    min_total_slots=min(policy.min_total_slots, slots)))
    return Scaling(tuple(policies), settings.active_policy_name)


def _scaling(settings) -> Scaling:
    return Scaling.from_elastic(settings) if isinstance(settings, ElasticSettings) else settings


def largest_max(settings) -> int:
    scaling = _scaling(settings)
    return max((p.slots_count if isinstance(p, FixedPolicy) else p.max_total_slots for p in scaling.policies),
               default=0)


def target(settings, model, at: float) -> int:
    """The slots the model's next tick aims at under the pool's own (uncapped) sizing."""
    if model.draining:
        return 0
    policy = _scaling(settings).policy_at(model.epoch + at)
    if policy is None:
        return 0
    if isinstance(policy, FixedPolicy):
        return policy.slots_count
    wanted = model.busy + model.queued + policy.min_idle_slots
    return min(max(wanted, policy.min_total_slots), policy.max_total_slots)


class QuotaGovernor:
    def __init__(self, cluster, quotas: Quotas) -> None:
        if quotas.period <= 0:
            raise ValueError("the quota period must be > 0")
        self.cluster, self.quotas = cluster, quotas
        self.evaluated: float | None = None     # last grid instant evaluated
        self.own: dict[str, object] = {}        # pool -> its own sizing (what the user set)
        self.applied: dict[str, object] = {}    # pool -> the sizing its model runs (own or a capped copy)
        self.share: dict[str, int] = {}         # pool -> nodes it may hold until the next grid instant
        self.held: dict[str, bool] = {}

    # -- hooks from the cluster ---------------------------------------------------------------------
    def own_sizing(self, pool):
        model = pool.model
        if self.applied.get(pool.uuid) is not model.settings:   # new pool, or the user committed
            self.own[pool.uuid] = model.settings
        return self.own[pool.uuid]

    def created(self, pool) -> None:
        """A new pool: it may hold what no other pool of its scheduling type holds."""
        limit = self.quotas.limit(pool.scheduling_type)
        if limit is None:
            return
        others = [p for p in self._live(pool.created) if p.scheduling_type == pool.scheduling_type
                  and p.uuid != pool.uuid]
        used_nodes = sum(self.share.get(p.uuid, 0) for p in others)
        used_cores = sum(self.share.get(p.uuid, 0) * p.cores_per_node for p in others)
        free = max(0, min(limit.max_instances - used_nodes, (limit.max_cores - used_cores) // pool.cores_per_node))
        own = self.own_sizing(pool)
        nodes = min(free, pool.nodes.nodes_for(largest_max(own)))
        self.share[pool.uuid] = nodes
        wanted = self._within(pool, nodes, own)
        if wanted is not own:   # a fresh model on the capped copy: nothing has happened yet, so this is exact
            model = pool.model
            pool.model = PoolModel(wanted, model.now, model.constants, epoch=model.epoch, waits=model.waits,
                                   timeline=model.timeline, meter=model.meter, on_change=model.on_change,
                                   on_policy=model.on_policy)
        self.applied[pool.uuid] = wanted

    def sizing(self, pool, settings):
        """A commit between grid instants: the sizing the model runs, the new one within the pool's share."""
        if self.quotas.limit(pool.scheduling_type) is None or pool.uuid not in self.share:
            return settings
        self.own[pool.uuid] = settings
        wanted = self._within(pool, self.share[pool.uuid], settings)
        self.applied[pool.uuid] = wanted
        return wanted

    def forgotten(self, pool) -> None:
        for table in (self.own, self.applied, self.share, self.held):
            table.pop(pool.uuid, None)

    def catch_up(self, now: float) -> None:
        """Evaluate every grid instant up to `now`, each pool brought to that instant first."""
        period = self.quotas.period
        last = math.floor(now / period) * period
        at = last if self.evaluated is None else self.evaluated + period
        while at <= last:
            for pool in self._live(at):
                self.cluster.advance(pool, at)
            self.evaluate(at)
            self.evaluated = at
            at += period

    # -- the shares -------------------------------------------------------------------------------
    def _live(self, at: float):
        """Pools not yet gone at `at` (a pool created later, e.g. backdated ones, already holds a share)."""
        return [p for p in sorted(self.cluster.pools.values(), key=lambda p: p.order)
                if p.delete_at is None or p.delete_at > at]

    def evaluate(self, at: float) -> None:
        live = self._live(at)
        for kind in KEYS:
            limit = self.quotas.limit(kind)
            pools = [p for p in live if p.scheduling_type == kind]
            if limit is None or not pools:
                continue
            own = {p.uuid: self.own_sizing(p) for p in pools}
            share = {p.uuid: p.nodes.nodes_for(p.model.ready + p.model.starting) for p in pools}
            nodes_left = limit.max_instances - sum(share.values())
            cores_left = limit.max_cores - sum(share[p.uuid] * p.cores_per_node for p in pools)
            held = {}
            for stage in ("demand", "rest"):
                for pool in pools:
                    goal = (0 if pool.model.draining else target(own[pool.uuid], pool.model, at)
                            if stage == "demand" else largest_max(own[pool.uuid]))
                    need = max(0, pool.nodes.nodes_for(goal) - share[pool.uuid])
                    grant = max(0, min(need, nodes_left, cores_left // pool.cores_per_node))
                    share[pool.uuid] += grant
                    nodes_left -= grant
                    cores_left -= grant * pool.cores_per_node
                    if stage == "demand":
                        held[pool.uuid] = grant < need
            for pool in pools:
                if pool.model.draining:   # it only shrinks: leave its model alone
                    self.share[pool.uuid] = share[pool.uuid]
                else:
                    self._apply(pool, share[pool.uuid], own[pool.uuid], at)
                self._set_held(pool, held[pool.uuid], at)

    @staticmethod
    def _within(pool, nodes: int, own):
        slots = nodes * pool.slots_per_node
        return own if slots >= largest_max(own) else capped(own, slots)

    def _apply(self, pool, nodes: int, own, at: float) -> None:
        """From grid instant `at` on, the pool's model runs within `nodes` (its ticks up to `at` ran
        within the previous share, which the quota allowed too)."""
        self.share[pool.uuid] = nodes
        wanted = self._within(pool, nodes, own)
        current = pool.model.settings
        if wanted is current or (wanted == current and self.applied.get(pool.uuid) is current):
            self.applied[pool.uuid] = current
            return
        pool.model.set_settings(max(at, pool.model.now), wanted)
        self.applied[pool.uuid] = wanted

    def _set_held(self, pool, held: bool, at: float) -> None:
        before = self.held.get(pool.uuid, False)
        self.held[pool.uuid] = held
        others = [e for e in pool.errors if not (isinstance(e, dict) and e.get("code") == QUOTA_ERROR_CODE)]
        if held:
            others.append({"code": QUOTA_ERROR_CODE,
                           "message": f"Computing quota reached: the account's {pool.scheduling_type} quota "
                                      f"holds this pool below the slots its work needs",
                           "debug": "emulated computing quota"})
        if others != pool.errors:
            pool.errors = others
        if held != before:
            from tracker.emulator.cluster import Truth
            self.cluster.ground_truth.append(Truth(at, pool.uuid, "quota", before, held))

    # -- the quota endpoints ----------------------------------------------------------------------
    def report(self, pools) -> dict:
        return report(self.quotas, pools)


def report(quotas: Quotas | None, pools) -> dict:
    """`{"flex": {...}, "onDemand": {...}, "reserved": [...]}` as `GET /quotas/computing-quotas/user`."""
    out: dict = {}
    for kind, key in KEYS.items():
        limit = quotas.limit(kind) if quotas is not None else None
        mine = [p for p in pools if p.scheduling_type == kind]
        entry = {"maxCores": UNLIMITED if limit is None else limit.max_cores,
                 "runningCoresCount": sum(p.running_cores for p in mine),
                 "maxInstances": UNLIMITED if limit is None else limit.max_instances,
                 "runningInstancesCount": sum(p.running_instances for p in mine)}
        if kind == "Reserved":
            entry = [{"reservationName": "emulated-reservation", "machineKey": "emulated-reserved-machine",
                      **entry}]
        out[key] = entry
    return out
