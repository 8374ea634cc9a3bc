"""What every policy returns, and the shared pieces they build it from.

A policy is a pure function `(demand, current settings, config) -> Recommendation`: settings inside the
API's ranges (or none, with the reason), a reason code and a sentence, the evidence (a back-test of the
current settings against the recommended ones on the same demand), and a confidence that grows with the
history seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from policies.backtest import backtest
from policies.model import DEFAULT_STARTUP_DELAY
from policies.settings import MIN_RESIZE_PERIOD, SDK_DEFAULTS, ElasticSettings
from policies.traces import Trace

MIN_HISTORY_SECONDS = 6 * 3600      # below this, no recommendation
FULL_CONFIDENCE_SECONDS = 7 * 86400  # a week of history: confidence 1
GRID_SECONDS = 60.0


@dataclass(frozen=True)
class Demand:
    """A pool's demand over an observed window: the trace, the window, and a sampled demand curve."""
    trace: Trace
    start: float
    end: float
    startup_delay: float = DEFAULT_STARTUP_DELAY
    slo_seconds: float = 300.0

    @property
    def span(self) -> float:
        return max(0.0, self.end - self.start)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(grid times, instances that would run at each if every one started on arrival)."""
        grid = np.arange(self.start, max(self.end, self.start + GRID_SECONDS), GRID_SECONDS)
        if not self.trace.arrivals:
            return grid, np.zeros(len(grid))
        arr = np.array(self.trace.arrivals, dtype=float)
        started = _cumulative_at(arr[:, 0], arr[:, 1], grid)
        finished = _cumulative_at(arr[:, 0] + arr[:, 2], arr[:, 1], grid)
        return grid, started - finished


def _cumulative_at(times: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """How many of `counts` happened at or before each grid time."""
    order = np.argsort(times, kind="stable")
    totals = np.concatenate(([0.0], np.cumsum(counts[order])))
    return totals[np.searchsorted(times[order], grid, side="right")]


@dataclass(frozen=True)
class Recommendation:
    policy: str
    settings: ElasticSettings | None
    reason_code: str
    reason: str
    confidence: float
    evidence: dict = field(default_factory=dict)


def too_little(policy: str, demand: Demand, needed: float = MIN_HISTORY_SECONDS) -> Recommendation | None:
    """The "no recommendation" answer when the history is too short, else None."""
    if demand.span >= needed and demand.trace.arrivals:
        return None
    return Recommendation(policy, None, "insufficient_history",
                          f"only {demand.span / 3600:.1f} h of history with {len(demand.trace.arrivals)} arrivals; "
                          f"needs {needed / 3600:.0f} h with work in it", 0.0)


def confidence(demand: Demand) -> float:
    return round(min(1.0, demand.span / FULL_CONFIDENCE_SECONDS), 3)


def clamp_settings(current: ElasticSettings | None, **values) -> ElasticSettings:
    """Settings from `values` over the current ones (or the SDK's defaults), forced into the API's ranges."""
    base = current if current is not None else ElasticSettings(**SDK_DEFAULTS)
    merged = {name: values.get(name, getattr(base, name)) for name in SDK_DEFAULTS}
    for name in ("min_total_slots", "max_total_slots", "min_idle_slots", "min_idle_time_seconds", "resize_period"):
        merged[name] = max(0, int(math.ceil(merged[name])))
    merged["resize_period"] = max(MIN_RESIZE_PERIOD, merged["resize_period"])
    merged["max_total_slots"] = max(1, merged["max_total_slots"])
    merged["min_total_slots"] = min(merged["min_total_slots"], merged["max_total_slots"])
    merged["resize_factor"] = float(min(1.0, max(0.05, merged["resize_factor"])))
    return ElasticSettings(**merged, is_elastic=base.is_elastic).validated()   # never flips elastic/static


def evidence(demand: Demand, current: ElasticSettings | None, recommended: ElasticSettings,
             changes=()) -> dict:
    """Back-test current vs recommended (with its schedule, if any) on the same demand."""
    def summary(settings, schedule=()):
        s = backtest(demand.trace, settings, startup_delay=demand.startup_delay, slo_seconds=demand.slo_seconds,
                     changes=schedule)
        return {"slot_hours": round(float(s.slot_hours), 2), "wait_p95_seconds": round(float(s.wait_p95), 1)}

    out = {"recommended": summary(recommended, changes)}
    if current is not None:
        out["current"] = summary(current)
    return out


def recommend(policy: str, demand: Demand, current: ElasticSettings | None, settings: ElasticSettings,
              reason_code: str, reason: str, changes=()) -> Recommendation:
    return Recommendation(policy, settings, reason_code, reason, confidence(demand),
                          evidence(demand, current, settings, changes))
