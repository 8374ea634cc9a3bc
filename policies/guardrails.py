"""Guardrails between a recommendation and a commit to Qarnot. Pure: each check returns a decision with
a reason code and a sentence, so every refusal says which guardrail held the commit back."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from policies.model import Sizing
from policies.recommendation import Recommendation, clamp_settings
from policies.scaling import Scaling
from policies.settings import ElasticSettings

NOT_RUNNING = ("Closing", "Closed", "Failure", "PendingDelete", "UnSubmitted")


@dataclass(frozen=True)
class CommitRules:
    opt_in: str = "pool-tracker-autoscale"   # a tag, or a label set to "true", that lets the advisor commit
    max_relative_change: float = 0.5         # per knob, per commit
    cooldown_seconds: float = 3600.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str
    reason: str
    settings: Sizing | None = None   # what would be sent (after limiting): elastic knobs or a scaling document


def opted_in(tags, labels, rules: CommitRules) -> bool:
    return rules.opt_in in tags or dict(labels).get(rules.opt_in, "").lower() == "true"


def limit_change(current: ElasticSettings, wanted: ElasticSettings, share: float) -> ElasticSettings:
    """Move each knob toward `wanted` by at most `share` of its current value, or one smallest step
    (a slot, a minute, 0.05 of resize factor) when that is more, so knobs at zero can still move."""
    smallest = {"min_total_slots": 1, "max_total_slots": 1, "min_idle_slots": 1, "min_idle_time_seconds": 60,
                "resize_factor": 0.05, "resize_period": 60}

    def step(name):
        old, new = getattr(current, name), getattr(wanted, name)
        room = max(abs(old) * share, smallest[name])
        value = min(max(new, old - room), old + room)
        if name == "resize_factor":
            return round(value, 3)
        return int(math.floor(value) if value < old else math.ceil(value))

    return clamp_settings(current, **{name: step(name) for name in smallest})


def _policies(settings: Sizing) -> tuple:
    return (settings if isinstance(settings, Scaling) else Scaling.from_elastic(settings)).policies


def check_commit(rec: Recommendation, *, state: str | None, tags, labels, current: Sizing | None,
                 last_commit: datetime | None, now: datetime, rules: CommitRules, slo_seconds: float) -> Decision:
    if rec.settings is None:
        return Decision(False, "no_recommendation", f"{rec.policy} made no recommendation: {rec.reason}")
    if not opted_in(tags, labels, rules):
        return Decision(False, "not_opted_in", f"the pool has neither the tag {rules.opt_in!r} nor the label "
                                               f"{rules.opt_in}=true")
    if state in NOT_RUNNING:
        return Decision(False, "pool_not_running", f"the pool is {state}; settings are only changed on live pools")
    if current is None:
        return Decision(False, "not_elastic", "the pool reports no elastic settings to change")
    if last_commit is not None and (now - last_commit).total_seconds() < rules.cooldown_seconds:
        wait = rules.cooldown_seconds - (now - last_commit).total_seconds()
        return Decision(False, "cooldown", f"the last commit was {(now - last_commit).total_seconds():.0f} s ago; "
                                           f"next allowed in {wait:.0f} s")
    if isinstance(rec.settings, Scaling) or isinstance(current, Scaling):
        # a weekly document is committed whole, in one write: limiting each knob of each policy would
        # commit a document nobody back-tested. The held-out back-test below is its guardrail. Once
        # committed it is unchanged, so the hourly round does not send it again.
        target: Sizing = rec.settings
        unchanged = _policies(current) == _policies(rec.settings)
    else:
        target = limit_change(current, rec.settings, rules.max_relative_change)
        unchanged = target == current
    if unchanged:
        return Decision(False, "unchanged", "the recommended settings equal the current ones")
    old, new = rec.evidence.get("current"), rec.evidence.get("recommended")
    if not old or not new or not _improves(old, new, slo_seconds):
        return Decision(False, "no_improvement", f"the back-test does not improve on the current settings "
                                                 f"(current {old}, recommended {new})")
    limited = target != rec.settings
    return Decision(True, "limited" if limited else "ok",
                    f"back-test ({rec.evidence.get('window', {}).get('kind', 'in-sample')} window): "
                    f"{old['slot_hours']} -> {new['slot_hours']} slot-hours, p95 wait "
                    f"{old['wait_p95_seconds']} -> {new['wait_p95_seconds']} s"
                    + (f"; change limited to {rules.max_relative_change:.0%} per knob" if limited else ""), target)


def _improves(old: dict, new: dict, slo_seconds: float) -> bool:
    """On the held-out window the evidence comes from: cheaper without pushing p95 wait past the SLO (or
    past today's, if already past it), or faster at no extra cost, or keeping an SLO today's settings break
    (what that costs is the policy's choice, within the pool's budget)."""
    ceiling = max(slo_seconds, old["wait_p95_seconds"])
    cheaper = new["slot_hours"] < old["slot_hours"] and new["wait_p95_seconds"] <= ceiling
    faster = new["slot_hours"] <= old["slot_hours"] and new["wait_p95_seconds"] < old["wait_p95_seconds"]
    restores = old["wait_p95_seconds"] > slo_seconds >= new["wait_p95_seconds"]
    return cheaper or faster or restores
