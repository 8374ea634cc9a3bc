"""Time of week: for pools with a daily or weekly rhythm, a maximum per hour of the week (the p95 of demand
in that hour over past weeks, plus a margin), as one Qarnot `scaling` document: a ManagedTasksQueue policy
per distinct maximum, each enabled over the Weekly periods that need it. Committed once, it runs as Qarnot
would run it (no hourly re-commits), and the back-test replays exactly that document.

Hours of the week not seen in the history take the same hour of the day on the days that were seen."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.frontier import managed
from policies.model import Sizing
from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.scaling import DAY, DAYS, MONDAY, WEEK, Scaling, Weekly
from policies.settings import ElasticSettings

NAME = "time-of-week"
HOUR = 3600
NEEDED = DAY   # a day shows the daily rhythm; unseen days take it


@dataclass(frozen=True)
class Config:
    percentile: float = 95.0
    margin: float = 1.15


def hours_of_week(times: np.ndarray, epoch: float) -> np.ndarray:
    """Hour of the week (0: Monday 00:00 UTC) of model times whose time 0 is epoch second `epoch`."""
    return ((times + epoch - MONDAY) % WEEK // HOUR).astype(int)


def profile(demand: Demand, config: Config = Config()) -> list[int]:
    grid, need = demand.curve()
    hours = hours_of_week(grid, demand.time_zero)
    seen = {h: need[hours == h] for h in np.unique(hours)}
    out = []
    for h in range(168):
        sample = seen.get(h)
        if sample is None:   # the same hour of the day on the days seen
            same = [seen[k] for k in seen if k % 24 == h % 24]
            sample = np.concatenate(same) if same else need
        out.append(max(1, math.ceil(config.margin * np.percentile(sample, config.percentile))))
    return [min(max(out), ladder(v)) for v in out]


def ladder(value: int) -> int:
    """`value` rounded up to 1..6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ... (steps of at most 25%), so that
    the document holds a few maxima, not one per hour."""
    if value <= 6:
        return value
    base = 2 ** math.floor(math.log2(value))
    return next(c for c in (math.ceil(base * m) for m in (1, 1.25, 1.5, 1.75, 2)) if c >= value)


def schedule(levels: list[int], base: ElasticSettings) -> Scaling:
    """One policy per distinct maximum, enabled over the runs of hours that need it (days sharing the
    same run of hours share one Weekly period)."""
    runs: dict[tuple[int, int, int], list[str]] = {}
    for day in range(7):
        hour = 0
        while hour < 24:
            level, end = levels[day * 24 + hour], hour + 1
            while end < 24 and levels[day * 24 + end] == level:
                end += 1
            runs.setdefault((level, hour, end), []).append(DAYS[day])
            hour = end
    policies = []
    for level in sorted({lv for lv, _, _ in runs}):
        periods = tuple(Weekly(tuple(days), start * HOUR, end % 24 * HOUR)
                        for (lv, start, end), days in sorted(runs.items()) if lv == level)
        knobs = base.with_(max_total_slots=level, min_total_slots=min(base.min_total_slots, level),
                           min_idle_slots=min(base.min_idle_slots, level))
        policies.append(managed(f"max-{level}", knobs, periods))
    return Scaling(tuple(policies))


def time_of_week(demand: Demand, current: Sizing | None, config: Config = Config()) -> Recommendation:
    if (short := too_little(NAME, demand, needed=NEEDED)) is not None:
        return short
    levels = profile(demand, config)
    base = clamp_settings(current if isinstance(current, ElasticSettings) else None)
    rec = recommend(NAME, demand, current, schedule(levels, base), "hour_of_week_profile",
                    f"a weekly scaling document with {len(set(levels))} maxima by hour of the week "
                    f"(p{config.percentile:.0f} x {config.margin} of demand in each hour), "
                    f"from {min(levels)} to {max(levels)} slots")
    rec.evidence["profile"] = levels
    return rec
