"""The policies by name, and the default the advisor and `backtest --policy` use."""
from __future__ import annotations

import inspect
from dataclasses import replace

from policies.frontier import Progress, describe
from policies.idle_headroom import idle_headroom
from policies.percentiles import percentiles
from policies.recommendation import HOLDOUT_MAX_SECONDS, HOLDOUT_SHARE, Demand, Recommendation, holdout
from policies.scaling import Scaling
from policies.search import search
from policies.settings import ElasticSettings
from policies.target_tracking import target_tracking
from policies.time_of_week import time_of_week

POLICIES = {
    "target-tracking": target_tracking,
    "percentiles": percentiles,
    "idle-headroom": idle_headroom,
    "time-of-week": time_of_week,
    "search": search,
}
DEFAULT_POLICY = "search"
SCALING_AWARE = ("time-of-week", "search")   # the others reason in legacy elastic knobs only


def current_for(name: str, current):
    """What policy `name` gets as the pool's current sizing: a scaling document only if it can use one."""
    return current.elastic_equivalent() if isinstance(current, Scaling) and name not in SCALING_AWARE else current


def proposals_for(demand: Demand, current: ElasticSettings | None) -> tuple[Recommendation, ...]:
    """Every policy but search: the seeds search explores around."""
    return tuple(policy(demand, current_for(name, current)) for name, policy in POLICIES.items() if name != "search")


def advise(name: str, demand: Demand, current, *, share: float = HOLDOUT_SHARE,
           max_seconds: float = HOLDOUT_MAX_SECONDS, progress: Progress | None = None) -> Recommendation:
    """Run policy `name` out of sample: it learns from the older history and is scored on the most recent
    part (`recommendation.holdout`). `progress(done, total)` follows the back-tests of policies that run many."""
    policy = POLICIES[name]
    kwargs = {"progress": progress} if progress is not None and "progress" in inspect.signature(policy).parameters \
        else {}
    return do_no_harm(policy(holdout(demand, share, max_seconds), current_for(name, current), **kwargs))


def do_no_harm(rec: Recommendation) -> Recommendation:
    """No policy recommends what breaks the SLO on the held-out window while the current sizing keeps it
    there: the pool keeps its sizing, and the reason says why (search already chooses this way)."""
    slo, now, new = rec.evidence.get("slo_seconds"), rec.evidence.get("current"), rec.evidence.get("recommended")
    if rec.settings is None or slo is None or not now or not new:
        return rec
    if new["wait_p95_seconds"] <= slo or now["wait_p95_seconds"] > slo:
        return rec
    return replace(rec, settings=None, reason_code="would_break_slo",
                   reason=f"{rec.policy} proposed {describe(rec.settings)}, but on the held-out window its p95 wait "
                          f"({new['wait_p95_seconds']:.0f} s) breaks the SLO ({slo:.0f} s) that the current sizing keeps "
                          f"({now['wait_p95_seconds']:.0f} s): keep the current sizing")
