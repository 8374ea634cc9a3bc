"""The advisor: runs the configured policies over each pool's recorded history, records every
recommendation as an event, and, only when the operator opted in, commits through the API behind the
guardrails, reading the settings back to confirm. Policy (what to recommend), guardrails (whether to
commit) and the commit itself (the side effect) stay separate, and every decision is recorded.

Each pool is advised against its own objective: a p95 wait SLO (`advisor.slo_seconds`, or the pool's label
`advisor.slo_label`, or a tag `NAME=SECONDS`) and an optional weekly slot-hour budget (likewise). Policies
choose on the older history and are scored on the held-out recent window (`advisor.holdout_share`)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from policies.frontier import describe
from policies.guardrails import NOT_RUNNING, CommitRules, Decision, check_commit
from policies.recommendation import Demand, Recommendation, holdout
from policies.registry import advise
from policies.scaling import FixedPolicy, Scaling
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
    account: Callable[[], dict] = dict     # the latest quotas and budgets (the cost collector's figures)

    def objective(self, view: PoolView) -> dict:
        """The pool's SLO and budget, and where each comes from (its label or tag, else the config)."""
        slo, slo_from = _own(view, self.config.slo_label, 86400.0)
        budget, budget_from = _own(view, self.config.budget_label, float("inf"))
        return {"slo_seconds": slo or self.config.slo_seconds, "slo_from": slo_from or "config advisor.slo_seconds",
                "budget_slot_hours_per_week": budget or self.config.budget_slot_hours_per_week,
                "budget_from": budget_from or ("config advisor.budget_slot_hours_per_week"
                                               if self.config.budget_slot_hours_per_week else "none")}

    def demand(self, uuid: str, now: datetime, objective: dict | None = None) -> Demand:
        """The pool's history as demand, the recent part held out to score recommendations on."""
        objective = objective or {"slo_seconds": self.config.slo_seconds,
                                  "budget_slot_hours_per_week": self.config.budget_slot_hours_per_week}
        frame = self.store.history(uuid, since=now - timedelta(seconds=self.config.history_seconds))
        trace, start, _ = history_to_trace(frame)
        full = Demand(trace, start, now.timestamp(), self.config.startup_delay_seconds, objective["slo_seconds"],
                      objective["budget_slot_hours_per_week"])
        return holdout(full, self.config.holdout_share, self.config.holdout_max_seconds)

    def recommend(self, view: PoolView, now: datetime, policies=None, progress=None) -> list[Recommendation]:
        objective = self.objective(view)
        demand = self.demand(view.uuid, now, objective)
        out = []
        price, carbon = self.store.unit_figures(view.scheduling_type)
        headroom = quota_headroom(self.account().get("quotas") or {}, view)
        for name in (policies or self.config.policies):
            rec = advise(name, demand, sizing(view), progress=progress)
            rec.evidence["objective"] = objective
            add_money_and_carbon(rec.evidence, price, carbon)
            out.append(cap_at_quota(rec, headroom))
        return out

    def run(self, now: datetime) -> list[tuple[str, Recommendation, Decision | None]]:
        """One round over every live pool: recommend, record, and commit where allowed."""
        out = []
        for view in list(self.store.views.values()):
            if view.state in NOT_RUNNING or sizing(view) is None:
                continue
            recs = self.recommend(view, now)
            events = [_event("recommendation_made", view.uuid, now, _describe(rec, brief=True)) for rec in recs]
            self.store.append_events(events)
            self.latest[view.uuid] = {r.policy: r.settings for r in recs if isinstance(r.settings, ElasticSettings)}
            decision = None
            if self.config.commit:
                chosen = next((r for r in recs if r.policy == self.config.commit_policy), None) \
                    or self.recommend(view, now, [self.config.commit_policy])[0]
                decision = self.commit(view, chosen, now)
            out.extend((view.uuid, rec, decision) for rec in recs)
        return out

    def commit(self, view: PoolView, rec: Recommendation, now: datetime, dry_run: bool = False) -> Decision:
        decision = over_budget(rec, self.account().get(f"budgets:{view.project}") or []) or \
            check_commit(rec, state=view.state, tags=view.tags, labels=view.labels, current=sizing(view),
                                last_commit=self.store.last_event_time(view.uuid, "commit_applied"), now=now,
                                rules=CommitRules(self.config.opt_in, self.config.max_relative_change,
                                                  self.config.cooldown_seconds),
                                slo_seconds=rec.evidence.get("objective", {}).get("slo_seconds", self.config.slo_seconds))
        if dry_run:
            return decision
        payload = {"policy": rec.policy, "code": decision.code, "reason": decision.reason,
                   "old": settings_payload(sizing(view)), "new": settings_payload(decision.settings)}
        if not decision.allowed:
            outcome = "refused"
        elif self.client is None:
            outcome, payload["reason"] = "failed", "no API client to commit with"
        else:
            try:
                commit = self.client.commit_scaling if isinstance(decision.settings, Scaling) else \
                    self.client.commit_elastic
                committed = commit(view.uuid, decision.settings, self.config.allow_form_change)
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


def add_money_and_carbon(evidence: dict, price: float | None, carbon: float | None) -> None:
    """Slot-hours in euros and gCO2eq at what a slot-hour cost and emitted on this account (observed)."""
    for key in ("current", "recommended"):
        point = evidence.get(key)
        if isinstance(point, dict) and "slot_hours" in point:
            point["euros"] = None if price is None else round(point["slot_hours"] * price, 2)
            point["gco2eq"] = None if carbon is None else round(point["slot_hours"] * carbon, 1)
    evidence["per_slot_hour"] = {"euros": price, "gco2eq": carbon, "from": "observed on this account "
                                 "(figures_per_slot_hour), none until credits and carbon facts have been collected"}


def quota_headroom(quotas: dict, view: PoolView) -> int | None:
    """The most slots this pool could run under the account's computing quota for its scheduling type:
    the quota's instances (nodes) and cores not used by the other pools, in this pool's slots."""
    kind = {"Flex": "flex", "OnDemand": "onDemand"}.get(view.scheduling_type or "", "")
    quota = quotas.get(kind)
    if not quota:
        return None
    caps = []
    if quota.get("max_instances") is not None:
        free = quota["max_instances"] - (quota.get("running_instances") or 0) + view.running_instances
        caps.append(free * view.slots_per_node)
    if quota.get("max_cores") is not None and view.running_instances:
        cores_per_node = view.running_cores / view.running_instances
        free = quota["max_cores"] - (quota.get("running_cores") or 0) + view.running_cores
        caps.append(int(free // cores_per_node) * view.slots_per_node)
    return max(0, min(caps)) if caps else None


def cap_at_quota(rec: Recommendation, headroom: int | None) -> Recommendation:
    """Never recommend more slots than the account's quota leaves this pool."""
    sizing_ = rec.settings
    if headroom is None or sizing_ is None:
        return rec
    if isinstance(sizing_, ElasticSettings):
        if sizing_.max_total_slots <= headroom:
            return rec
        capped = sizing_.with_(max_total_slots=max(1, headroom), min_total_slots=min(sizing_.min_total_slots, headroom))
    else:
        policies = tuple(replace(p, slots_count=min(p.slots_count, headroom)) if isinstance(p, FixedPolicy) else
                         replace(p, max_total_slots=min(p.max_total_slots, max(1, headroom)),
                                 min_total_slots=min(p.min_total_slots, headroom)) for p in sizing_.policies)
        if policies == sizing_.policies:
            return rec
        capped = Scaling(policies)
    rec.evidence["capped_at_quota"] = headroom
    return replace(rec, settings=capped, reason=f"{rec.reason} (capped at the {headroom} slots the account's "
                                                "computing quota leaves this pool)")


def over_budget(rec: Recommendation, budgets: list[dict]) -> Decision | None:
    """Refuse a commit whose extra weekly spend would exceed what a project budget has left."""
    old, new = rec.evidence.get("current") or {}, rec.evidence.get("recommended") or {}
    hours = (rec.evidence.get("window") or {}).get("hours")
    if old.get("euros") is None or new.get("euros") is None or not hours or new["euros"] <= old["euros"]:
        return None
    extra = (new["euros"] - old["euros"]) * 168 / hours
    left = [b["remainingAmountInCents"] / 100 for b in budgets
            if isinstance(b.get("remainingAmountInCents"), (int, float)) and not b.get("isArchived")]
    if not left or extra <= min(left):
        return None
    return Decision(False, "over_budget", f"the recommendation would spend about {extra:.2f} euros more a week, "
                                          f"more than the project's budget has left ({min(left):.2f} euros)")


def sizing(view: PoolView):
    """What sizes the pool now: its scaling document, or its legacy elastic settings."""
    return view.scaling if view.scaling is not None else view.settings


def _own(view: PoolView, name: str, ceiling: float) -> tuple[float | None, str | None]:
    """A positive number the pool sets for itself: label `name`, or a tag `name=value`."""
    candidates = [(v, f"label {name}") for k, v in view.labels if k == name]
    candidates += [(t.split("=", 1)[1], f"tag {t}") for t in view.tags if t.startswith(f"{name}=")]
    for text, source in candidates:
        try:
            value = float(text)
        except ValueError:
            continue
        if 0 < value <= ceiling:
            return value, source
    return None, None


def _describe(rec: Recommendation, brief: bool = False) -> dict:
    """A recommendation as JSON; `brief` (for the event log) keeps the frontier's size, not its points."""
    evidence = rec.evidence
    if brief:
        evidence = {k: v for k, v in evidence.items() if k not in ("frontier", "fixed_frontier")}
        evidence["frontier_points"] = len(rec.evidence.get("frontier", ()))
    return {"policy": rec.policy, "kind": "scaling" if isinstance(rec.settings, Scaling) else "elastic",
            "settings": settings_payload(rec.settings), "described": describe(rec.settings),
            "reason_code": rec.reason_code, "reason": rec.reason, "confidence": rec.confidence, "evidence": evidence}


def _event(kind: str, uuid: str, now: datetime, payload: dict) -> Event:
    return Event(kind, uuid, now, now, payload=payload)


def report(advisor: Advisor, now: datetime, pool: str | None = None, policy: str | None = None,
           progress=None) -> list[dict]:
    """Recommendations with reasons and evidence, as rows: `pool-tracker recommend` and GET /recommendations.
    `progress`, when given, has `phase(done, total)` and `end_phase()` (a progress bar over the back-tests)."""
    views = [v for v in advisor.store.views.values() if pool in (None, v.uuid)]
    if pool is not None and not views:
        raise LookupError(f"pool {pool} is not in the history; list pools with "
                          "`pool-tracker sql \"SELECT pool_uuid, name FROM pool_current\"`")
    rows = []
    for view in views:
        for name in ([policy] if policy else advisor.config.policies):
            (rec,) = advisor.recommend(view, now, [name], None if progress is None else progress.phase)
            if progress is not None:
                progress.end_phase()
            rows.append({"pool": view.uuid, "name": view.name, **_describe(rec),
                         "current": settings_payload(sizing(view))})
    return rows


def apply(advisor: Advisor, pool: str, now: datetime, dry_run: bool = False) -> dict:
    """Recommend with the commit policy and commit behind the guardrails (`pool-tracker apply`, POST /apply)."""
    view = advisor.store.views.get(pool)
    if view is None:
        raise LookupError(f"pool {pool} is not in the history")
    rec = advisor.recommend(view, now, [advisor.config.commit_policy])[0]
    decision = advisor.commit(view, rec, now, dry_run=dry_run)
    return {"pool": pool, "policy": rec.policy, "allowed": decision.allowed, "code": decision.code,
            "reason": decision.reason, "dry_run": dry_run, "current": settings_payload(sizing(view)),
            "would_send" if dry_run else "sent": {
                "scaling" if isinstance(decision.settings, Scaling) else "elasticProperty":
                settings_payload(decision.settings)} if decision.allowed else None}
