"""Collectors with their own, slower cadence: what pools cost and emit (credits, carbon facts) and what
the account may spend and run (computing quotas, project budgets, credits left).

They are siblings of the state poll, never part of it: each run fetches concurrently, derives pure
events (`tracker.costs`) and appends them in its own transaction, so a slow carbon endpoint never holds
state tracking back. Pool figures are fetched hourly while a pool lives and once when it ends, at most
`max_pools_per_run` pools per run, so 10,000 pools are spread over many runs rather than asked at once.
Polls come first: while one runs (`poll_idle` clear) the collector sends no new request. One pool's
failure costs no other pool its figures.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from tracker import costs
from tracker.api import ApiError, PoolNotFound, QarnotClient
from tracker.logs import event
from tracker.store import Store


@dataclass(frozen=True)
class CollectResult:
    fetched: int          # pools whose figures came back
    failed: int           # pools (or account figures) the API could not give this run
    events: int


def poll_gate(poll_idle: threading.Event | None) -> threading.Event:
    """The daemon's "no poll running" event, or one always set for a collector used on its own."""
    if poll_idle is None:
        poll_idle = threading.Event()
        poll_idle.set()
    return poll_idle


class CostCollector:
    def __init__(self, client: QarnotClient, store: Store, config, poll_idle: threading.Event | None = None) -> None:
        self.client, self.store, self.config = client, store, config
        self.poll_idle = poll_gate(poll_idle)
        self.last_fetch: dict[str, datetime] = store.last_times(("credits_checkpointed", "carbon_checkpointed"))
        self.account: dict = store.latest_account()   # what the account figures were at the last change

    def collect_pools(self, now: datetime) -> CollectResult:
        due = [v.uuid for v in list(self.store.views.values()) if v.state is not None and costs.due_for_figures(
            v.state, v.state_since, self.last_fetch.get(v.uuid), now, self.config.pool_interval_seconds)]
        due = sorted(due, key=lambda uuid: self.last_fetch.get(uuid) or datetime.min.replace(tzinfo=now.tzinfo))
        due = due[:self.config.max_pools_per_run]
        with ThreadPoolExecutor(self.config.concurrency) as pool:
            figures = list(pool.map(self._pool_figures, due))
        events = [e for uuid, credits, carbon in figures for e in costs.pool_events(uuid, now, credits, carbon)]
        self.store.append_events(events)
        for uuid, credits, carbon in figures:
            if credits is not None or carbon is not None:
                self.last_fetch[uuid] = now
        failed = sum(credits is None and carbon is None for _, credits, carbon in figures)
        return CollectResult(len(figures) - failed, failed, len(events))

    def _pool_figures(self, uuid: str) -> tuple[str, float | None, dict | None]:
        out = [uuid, None, None]
        for i, fetch in ((1, lambda: self.client.pool_credits(uuid)),
                         (2, lambda: self.client.pool_carbon(uuid, self.config.comparison_datacenter))):
            self.poll_idle.wait(timeout=self.config.run_every_seconds)   # a poll is running: let it have the API
            try:
                out[i] = fetch()
            except PoolNotFound:
                pass                      # gone since the last poll, or not billed yet
            except ApiError as exc:
                event(logging.WARNING, f"figures not collected: {exc}", pool=uuid)
        return tuple(out)  # type: ignore[return-value]

    def collect_account(self, now: datetime) -> CollectResult:
        fetches = {"quotas": self.client.computing_quotas, "account_credits": self.client.account_credits}
        projects = sorted({v.project for v in self.store.views.values() if v.project})
        fetches.update({f"budgets:{p}": (lambda p=p: self.client.project_budgets(p)) for p in projects})
        observed, failed = {}, 0
        for key, fetch in fetches.items():
            try:
                observed[key] = fetch()
            except PoolNotFound:
                pass                      # this account has no such figures
            except ApiError as exc:
                failed += 1
                event(logging.WARNING, f"account figures not collected: {exc}", what=key)
        events = costs.account_events(self.account, now, observed)
        self.store.append_events(events)
        self.account.update(observed)
        return CollectResult(len(observed), failed, len(events))

