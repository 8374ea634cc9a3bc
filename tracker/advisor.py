"""The advisor: runs the configured policies over each pool's recorded history, records every
recommendation as an event, and, only when the operator opted in, commits through the API behind the
guardrails, reading the settings back to confirm. Policy (what to recommend), guardrails (whether to
commit) and the commit itself (the side effect) stay separate, and every decision is recorded."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from policies.guardrails import NOT_RUNNING, CommitRules, Decision, check_commit
from policies.recommendation import Demand, Recommendation
from policies.registry import POLICIES
from policies.settings import ElasticSettings
from policies.traces import history_to_trace
from tracker.api import ApiError, QarnotClient
from tracker.commits import CommitRefused, NotConfirmed
from tracker.config import Advisor as AdvisorConfig
from tracker.events import Event, PoolView, settings_payload
from tracker.store import Store


@dataclass
class Advisor:
    store: Store
    config: AdvisorConfig
    client: QarnotClient | None = None
    on_decision: Callable[[str], None] = lambda outcome: None
    latest: dict[str, dict[str, ElasticSettings]] = field(default_factory=dict)  # for metrics

    def demand(self, uuid: str, now: datetime) -> Demand:
        frame = self.store.history(uuid, since=now - timedelta(seconds=self.config.history_seconds))
        trace, start, _ = history_to_trace(frame)
        return Demand(trace, start, now.timestamp(), self.config.startup_delay_seconds, self.config.slo_seconds)

    def recommend(self, view: PoolView, now: datetime, policies=None) -> list[Recommendation]:
        demand = self.demand(view.uuid, now)
        return [POLICIES[name](demand, view.settings) for name in (policies or self.config.policies)]

    def run(self, now: datetime) -> list[tuple[str, Recommendation, Decision | None]]:
        """One round over every live pool: recommend, record, and commit where allowed."""
        out = []
        for view in list(self.store.views.values()):
            if view.state in NOT_RUNNING or view.settings is None:
                continue
            recs = self.recommend(view, now)
            events = [_event("recommendation_made", view.uuid, now, _describe(rec)) for rec in recs]
            self.store.append_events(events)
            self.latest[view.uuid] = {r.policy: r.settings for r in recs if r.settings is not None}
            decision = None
            if self.config.commit:
                chosen = next((r for r in recs if r.policy == self.config.commit_policy), None) \
                    or self.recommend(view, now, [self.config.commit_policy])[0]
                decision = self.commit(view, chosen, now)
            out.extend((view.uuid, rec, decision) for rec in recs)
        return out

    def commit(self, view: PoolView, rec: Recommendation, now: datetime, dry_run: bool = False) -> Decision:
        decision = check_commit(rec, state=view.state, tags=view.tags, labels=view.labels, current=view.settings,
                                last_commit=self.store.last_event_time(view.uuid, "commit_applied"), now=now,
                                rules=CommitRules(self.config.opt_in, self.config.max_relative_change,
                                                  self.config.cooldown_seconds),
                                slo_seconds=self.config.slo_seconds)
        if dry_run:
            return decision
        payload = {"policy": rec.policy, "code": decision.code, "reason": decision.reason,
                   "old": settings_payload(view.settings), "new": settings_payload(decision.settings)}
        if not decision.allowed:
            outcome = "refused"
        elif self.client is None:
            outcome, payload["reason"] = "failed", "no API client to commit with"
        else:
            try:
                committed = self.client.commit_elastic(view.uuid, decision.settings, self.config.allow_form_change)
                outcome, payload["changed"] = "applied", committed.changed
            except CommitRefused as exc:
                outcome, payload["code"], payload["reason"] = "refused", exc.code, str(exc)
            except (ApiError, NotConfirmed) as exc:
                outcome, payload["reason"] = "failed", str(exc)
        self.store.append_events([_event(f"commit_{outcome}", view.uuid, now, payload)])
        self.on_decision(outcome)
        if outcome == "applied":
            return decision
        return Decision(False, "commit_failed" if outcome == "failed" else payload["code"], payload["reason"])


def _describe(rec: Recommendation) -> dict:
    return {"policy": rec.policy, "settings": settings_payload(rec.settings), "reason_code": rec.reason_code,
            "reason": rec.reason, "confidence": rec.confidence, "evidence": rec.evidence}


def _event(kind: str, uuid: str, now: datetime, payload: dict) -> Event:
    return Event(kind, uuid, now, now, payload=payload)


def report(advisor: Advisor, now: datetime, pool: str | None = None, policy: str | None = None) -> list[dict]:
    """Recommendations with reasons and evidence, as rows: `pool-tracker recommend` and GET /recommendations."""
    views = [v for v in advisor.store.views.values() if pool in (None, v.uuid)]
    if pool is not None and not views:
        raise LookupError(f"pool {pool} is not in the history; list pools with "
                          "`pool-tracker sql \"SELECT pool_uuid, name FROM pool_current\"`")
    rows = []
    for view in views:
        for rec in advisor.recommend(view, now, [policy] if policy else None):
            rows.append({"pool": view.uuid, "name": view.name, **_describe(rec),
                         "current": settings_payload(view.settings)})
    return rows


def apply(advisor: Advisor, pool: str, now: datetime, dry_run: bool = False) -> dict:
    """Recommend with the commit policy and commit behind the guardrails (`pool-tracker apply`, POST /apply)."""
    view = advisor.store.views.get(pool)
    if view is None:
        raise LookupError(f"pool {pool} is not in the history")
    rec = advisor.recommend(view, now, [advisor.config.commit_policy])[0]
    decision = advisor.commit(view, rec, now, dry_run=dry_run)
    return {"pool": pool, "policy": rec.policy, "allowed": decision.allowed, "code": decision.code,
            "reason": decision.reason, "dry_run": dry_run, "current": settings_payload(view.settings),
            "would_send" if dry_run else "sent": {"elasticProperty": settings_payload(decision.settings)}
            if decision.allowed else None}
