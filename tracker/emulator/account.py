"""One emulated account: its money (`Ledger`) and its computing quotas (`QuotaGovernor`).

The cluster calls these hooks (`Cluster.account`): a pool created, its sizing committed, a pool gone,
and `catch_up(now)` before any read, so quota shares are evaluated on their fixed grid.
"""
from __future__ import annotations

from tracker.emulator.billing import DEFAULT_PRICES, Prices
from tracker.emulator.ledger import Ledger, Project
from tracker.emulator.quotas import QuotaGovernor, Quotas, report


class Account:
    def __init__(self, cluster, *, prices: Prices = DEFAULT_PRICES, projects: tuple[Project, ...] | None = None,
                 initial_credits: float = 50_000.0, quotas: Quotas | None = None) -> None:
        self.cluster = cluster
        self.ledger = Ledger(cluster, prices=prices, projects=projects, initial_credits=initial_credits)
        self.quotas = quotas
        self.governor = QuotaGovernor(cluster, quotas) if quotas is not None else None

    # -- hooks --------------------------------------------------------------------------------------
    def created(self, pool) -> None:
        if self.governor is not None:
            self.governor.created(pool)

    def sizing(self, pool, settings):
        """The sizing the pool's model should run for the pool's own `settings` (capped under quotas)."""
        return settings if self.governor is None else self.governor.sizing(pool, settings)

    def forgotten(self, pool) -> None:
        self.ledger.forget(pool)
        if self.governor is not None:
            self.governor.forgotten(pool)

    def catch_up(self, now: float) -> None:
        if self.governor is not None:
            self.governor.catch_up(now)

    # -- reads --------------------------------------------------------------------------------------
    def quota_report(self, now: float | None = None) -> dict:
        return report(self.quotas, self.cluster.all_pools(now))

    def held_at_quota(self) -> set[str]:
        return {uuid for uuid, held in (self.governor.held.items() if self.governor else ()) if held}
