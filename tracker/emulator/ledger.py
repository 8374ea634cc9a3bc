"""The emulated account's money: pool costs, account credits, projects and their budgets.

- A pool's euros, Wh and gCO2eq come from `tracker.emulator.billing`, from the pool's model at the
  simulated instant asked (`PoolCost`); a deleted pool's final figures are kept (`forget`) so the
  account and its project still count them.
- Account credits left (`GET /credits/v1/accounts/credits`) = `initial_credits` - euros of every
  pool, deleted ones included.
- Projects: every pool belongs to one (`projectUuid`); a pool created without one joins the default
  project; seeded pools are spread over the projects by creation order.
- A budget's consumed amount is the euros of all its project's pools since the emulator started
  (simplification: `startDateUtc`/`expirationDateUtc` only decide whether the budget is active);
  remaining = max(0, total - consumed); amounts are whole euro cents.
- `budgetOverrunPolicy`: `BlockNew` and `StopAndBlockAll` refuse new pools in a project with an
  active, spent budget (402, the SDK's NotEnoughCreditsException); `AlertOnly` refuses nothing.
  Stopping the running pools of a `StopAndBlockAll` project is not emulated.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field

from tracker.emulator.billing import DEFAULT_PRICES, Prices, carbon_facts, euros, it_energy_wh
from tracker.emulator.documents import api_time

OVERRUN_POLICIES = ("AlertOnly", "BlockNew", "StopAndBlockAll")
BLOCKING = ("BlockNew", "StopAndBlockAll")


@dataclass(frozen=True)
class Budget:
    alias: str
    total_cents: int
    overrun_policy: str = "AlertOnly"
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    start: float | None = None           # epoch seconds; None: the emulator's start
    expiration: float | None = None      # None: never expires
    archived: bool = False

    def __post_init__(self) -> None:
        if self.overrun_policy not in OVERRUN_POLICIES:
            raise ValueError(f"budgetOverrunPolicy must be one of {', '.join(OVERRUN_POLICIES)}, "
                             f"got {self.overrun_policy!r}")

    def active(self, now: float, started: float) -> bool:
        start = started if self.start is None else self.start
        return not self.archived and start <= now and (self.expiration is None or now < self.expiration)


@dataclass(frozen=True)
class Project:
    uuid: str
    name: str
    budgets: tuple[Budget, ...] = ()
    is_default: bool = False

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")

    def to_api(self) -> dict:
        return {"uuid": self.uuid, "name": self.name, "slug": self.slug, "description": f"emulated {self.name}",
                "organizationUuid": ORGANIZATION_UUID, "isDefault": self.is_default}


ORGANIZATION_UUID = "0f0f0f0f-0000-4000-8000-000000000001"
ORGANIZATION_NAME = "emulated-organization"


def default_projects() -> tuple[Project, ...]:
    """Three projects with fixed uuids: one default, alerting only, and two with blocking budgets."""
    return (
        Project("5e1ec7ed-0000-4000-8000-000000000001", "default", (
            Budget("default yearly", 10_000_00, "AlertOnly", "b0d9e700-0000-4000-8000-000000000001"),), True),
        Project("5e1ec7ed-0000-4000-8000-000000000002", "research", (
            Budget("research quarterly", 2_000_00, "BlockNew", "b0d9e700-0000-4000-8000-000000000002"),)),
        Project("5e1ec7ed-0000-4000-8000-000000000003", "rendering", (
            Budget("rendering monthly", 500_00, "StopAndBlockAll", "b0d9e700-0000-4000-8000-000000000003"),
            Budget("rendering archived", 100_00, "BlockNew", "b0d9e700-0000-4000-8000-000000000004",
                   archived=True))),
    )


class BudgetExceeded(Exception):
    """A new pool in a project whose active budget is spent under BlockNew / StopAndBlockAll: 402."""


@dataclass(frozen=True)
class PoolCost:
    """One pool's cumulative figures at `at` (simulated epoch seconds)."""
    uuid: str
    project: str | None
    scheduling_type: str
    at: float
    slot_seconds: float
    core_seconds: float
    euros: float
    it_wh: float
    total_wh: float
    gco2eq: float

    def to_api(self) -> dict:
        return {"uuid": self.uuid, "projectUuid": self.project, "schedulingType": self.scheduling_type,
                "at": self.at, "slotSeconds": self.slot_seconds, "coreSeconds": self.core_seconds,
                "euros": self.euros, "energyItWh": self.it_wh, "energyWh": self.total_wh,
                "carbonGCO2eq": self.gco2eq}


def pool_cost(pool, prices: Prices = DEFAULT_PRICES) -> PoolCost:
    """The pool's figures at its model's current time (advance the pool first)."""
    now = pool.model.now
    slots, cores = pool.model.slot_seconds, pool.nodes.core_seconds(now)
    facts = carbon_facts(cores, prices)
    return PoolCost(pool.uuid, pool.project_uuid, pool.scheduling_type, now, slots, cores,
                    euros(slots, pool.scheduling_type, prices), it_energy_wh(cores, prices),
                    facts["total_consumed_energy_Wh"], facts["qarnot_carbon_footprint"])


class Ledger:
    """The account of one emulator: prices, projects and budgets, credits, and deleted pools' costs."""

    def __init__(self, cluster, *, prices: Prices = DEFAULT_PRICES, projects: tuple[Project, ...] | None = None,
                 initial_credits: float = 50_000.0, started: float | None = None) -> None:
        self.cluster, self.prices = cluster, prices
        self.projects = {p.uuid: p for p in (default_projects() if projects is None else projects)}
        if not self.projects:
            raise ValueError("an emulated account needs at least one project")
        self.default_project = next((p for p in self.projects.values() if p.is_default),
                                    next(iter(self.projects.values()))).uuid
        self.initial_credits = float(initial_credits)
        self.started = cluster.clock() if started is None else started
        self.forgotten: dict[str, PoolCost] = {}   # deleted pools: their final figures

    # -- projects ---------------------------------------------------------------------------------
    def spread(self, pools) -> None:
        """Give seeded pools (those without a project) the projects in turn, in creation order."""
        uuids, pools = list(self.projects), list(pools)
        self.started = min([self.started, *(p.created for p in pools)])   # budgets cover the seeded pools
        for pool in sorted(pools, key=lambda p: p.order):
            if pool.project_uuid is None:
                pool.project_uuid = uuids[pool.order % len(uuids)]

    def project_of_new_pool(self, wanted: str | None) -> str:
        """The project a new pool joins; raises LookupError (unknown) or BudgetExceeded (blocked)."""
        project = self.projects.get(wanted or self.default_project)
        if project is None:
            raise ValueError(f"unknown projectUuid {wanted!r}")
        now = self.cluster.clock()
        consumed = None
        for budget in project.budgets:
            if budget.overrun_policy in BLOCKING and budget.active(now, self.started):
                consumed = self.project_euros(project.uuid) if consumed is None else consumed
                if round(consumed * 100) >= budget.total_cents:
                    raise BudgetExceeded(
                        f"Not enough credits: budget {budget.alias!r} of project {project.name!r} is spent "
                        f"({round(consumed * 100)} of {budget.total_cents} cents, policy {budget.overrun_policy})")
        return project.uuid

    # -- money ------------------------------------------------------------------------------------
    def forget(self, pool) -> None:
        """A pool leaves the cluster (deleted): keep its final figures."""
        self.forgotten[pool.uuid] = pool_cost(pool, self.prices)

    def costs(self, now: float | None = None) -> list[PoolCost]:
        """Every pool's figures at `now` (live pools advanced to it), deleted pools' final figures."""
        with self.cluster.lock:
            live = [pool_cost(p, self.prices) for p in self.cluster.all_pools(now)]
            return live + list(self.forgotten.values())

    def project_euros(self, project_uuid: str, now: float | None = None) -> float:
        return sum(c.euros for c in self.costs(now) if c.project == project_uuid)

    def credits_left(self, now: float | None = None) -> float:
        return self.initial_credits - sum(c.euros for c in self.costs(now))

    def budgets(self, project_uuid: str, active_only: bool, now: float | None = None) -> list[dict]:
        project = self.projects.get(project_uuid)
        if project is None:
            raise LookupError(f"project {project_uuid} not found")
        now = self.cluster.clock() if now is None else now
        consumed = round(self.project_euros(project_uuid, now) * 100)
        out = []
        for budget in project.budgets:
            if active_only and not budget.active(now, self.started):
                continue
            start = self.started if budget.start is None else budget.start
            out.append({
                "uuid": budget.uuid, "alias": budget.alias,
                "consumedAmountInCents": consumed, "totalAmountInCents": budget.total_cents,
                "remainingAmountInCents": max(0, budget.total_cents - consumed),
                "budgetOverrunPolicy": budget.overrun_policy,
                "startDateUtc": api_time(start), "expirationDateUtc": api_time(budget.expiration),
                "isArchived": budget.archived,
            })
        return out

