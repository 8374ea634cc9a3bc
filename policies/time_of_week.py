"""Time of week: for pools with a daily or weekly rhythm, a maximum per hour of the week (the p95 of
demand in that hour over past weeks), so the daemon can commit different settings at different hours.
The recommendation is the profile's value for the hour the history ends in; the evidence replays the
whole profile, switching settings every hour."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "time-of-week"
WEEK, HOUR = 7 * 86400, 3600


@dataclass(frozen=True)
class Config:
    percentile: float = 95.0
    margin: float = 1.15


def hour_of_week(t):
    """Hour of the week of a Unix time, or of an array of them (0 is Monday 00:00 UTC; Unix time 0 was a Thursday)."""
    return (t + 3 * 86400) % WEEK // HOUR


def time_of_week(demand: Demand, current: ElasticSettings | None, config: Config = Config()) -> Recommendation:
    if (short := too_little(NAME, demand, needed=WEEK)) is not None:
        return short
    grid, need = demand.curve()
    hours = hour_of_week(grid).astype(int)
    profile = [math.ceil(config.margin * np.percentile(need[hours == h], config.percentile)) if np.any(hours == h)
               else 0 for h in range(168)]
    at = lambda t: clamp_settings(current, max_total_slots=max(1, profile[int(hour_of_week(t))]))  # noqa: E731
    first_hour = math.ceil(demand.start / HOUR) * HOUR
    schedule = [(t, at(t)) for t in np.arange(first_hour, demand.end, HOUR)]
    last_hour = int(hour_of_week(demand.end))
    rec = recommend(NAME, demand, current, at(demand.end), "hour_of_week_profile",
                    f"hour {last_hour} of the week needs {profile[last_hour]} slots "
                    f"(p{config.percentile:.0f} x {config.margin}); the profile ranges {min(profile)}-{max(profile)}",
                    changes=schedule)
    rec.evidence["profile"] = profile
    return rec
