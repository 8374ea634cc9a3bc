"""The policies by name, and the default the advisor and `backtest --policy` use."""
from __future__ import annotations

from policies.idle_headroom import idle_headroom
from policies.percentiles import percentiles
from policies.recommendation import Demand, Recommendation
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


def proposals_for(demand: Demand, current: ElasticSettings | None) -> tuple[Recommendation, ...]:
    """Every policy but search: the seeds search explores around."""
    return tuple(policy(demand, current) for name, policy in POLICIES.items() if name != "search")
