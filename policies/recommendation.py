"""What every policy returns, and the shared pieces they build it from.

A policy is a pure function `(demand, current settings, config) -> Recommendation`: settings (legacy
elastic knobs or a `Scaling` document) inside the API's ranges (or none, with the reason), a reason code
and a sentence, the evidence and a confidence.

Out of sample: `holdout(demand)` keeps the most recent part of the history aside (a share of it, at most
a week). A policy sees only the older part (`Demand.trace`, `start`..`end`); the evidence (current vs
recommended), the guardrail "must improve" and the confidence are computed on the held-out window
(`Demand.heldout`), and the evidence names that window. Without a held-out part (a Demand built directly)
the evidence is in-sample and says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from policies.backtest import replay, score, trace_epoch
from policies.model import DEFAULT_STARTUP_DELAY, Sizing
from policies.settings import MIN_RESIZE_PERIOD, SDK_DEFAULTS, ElasticSettings
from policies.traces import Trace

MIN_HISTORY_SECONDS = 6 * 3600      # below this, no recommendation
FULL_CONFIDENCE_SECONDS = 7 * 86400  # a week of history: confidence 1
GRID_SECONDS = 60.0
HOLDOUT_SHARE = 0.25                 # of the history kept aside to score on
HOLDOUT_MAX_SECONDS = 7 * 86400.0    # never more than the last week
LEARN_MAX_SECONDS = 28 * 86400.0     # policies learn from at most four weeks before the held-out window
FULL_HOLDOUT_INSTANCES = 20          # fewer held-out task instances than this lower the confidence


@dataclass(frozen=True)
class Demand:
    """A pool's demand over an observed window: the trace, the window, and a sampled demand curve."""
    trace: Trace
    start: float
    end: float
    startup_delay: float = DEFAULT_STARTUP_DELAY
    slo_seconds: float = 300.0
    budget_slot_hours_per_week: float | None = None   # a cap on cost; None: no cap
    heldout: Trace | None = None    # the most recent arrivals, kept aside to score on (see `holdout`)
    heldout_start: float = 0.0
    heldout_end: float = 0.0
    epoch: float | None = None      # epoch second of time 0 (for weekly periods); None: `trace_epoch`

    @property
    def span(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def history_span(self) -> float:
        """The whole history's span, the held-out part included."""
        return max(0.0, (self.heldout_end if self.heldout is not None else self.end) - self.start)

    @property
    def time_zero(self) -> float:
        """Epoch second of the trace's time 0 (0 for epoch timestamps, a Monday for relative traces)."""
        return trace_epoch(self.trace) if self.epoch is None else self.epoch

    def scoring_window(self) -> tuple[Trace, float, float, str]:
        """(trace, start, end, kind) the evidence is scored on: the held-out window when there is one."""
        if self.heldout is not None:
            return self.heldout, self.heldout_start, self.heldout_end, "held-out"
        end = max([self.end] + [t + d for t, _, d in self.trace.arrivals])
        return self.trace, self.start, end, "in-sample"

    def per_week(self, slot_hours: float, span: float) -> float:
        return slot_hours * 7 * 86400 / max(span, 1.0)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(grid times, instances that would run at each if every one started on arrival)."""
        grid = np.arange(self.start, max(self.end, self.start + GRID_SECONDS), GRID_SECONDS)
        if not self.trace.arrivals:
            return grid, np.zeros(len(grid))
        arr = np.array(self.trace.arrivals, dtype=float)
        started = _cumulative_at(arr[:, 0], arr[:, 1], grid)
        finished = _cumulative_at(arr[:, 0] + arr[:, 2], arr[:, 1], grid)
        return grid, started - finished


def holdout(demand: Demand, share: float = HOLDOUT_SHARE, max_seconds: float = HOLDOUT_MAX_SECONDS) -> Demand:
    """The demand a policy may learn from (the older part, at most the four weeks before it), carrying the
    most recent part aside: `share` of the window, at most `max_seconds`. Scoring on it runs to when its last
    task would end."""
    if demand.heldout is not None or share <= 0:
        return demand
    cutoff = demand.end - min(max_seconds, share * demand.span)
    first = max(demand.start, cutoff - LEARN_MAX_SECONDS)   # older than four weeks: neither recent nor cheap
    older = tuple(a for a in demand.trace.arrivals if first <= a[0] < cutoff)
    recent = tuple(a for a in demand.trace.arrivals if a[0] >= cutoff)
    end = max([demand.end] + [t + d for t, _, d in recent])
    return replace(demand, trace=Trace(older), start=first, end=cutoff, heldout=Trace(recent), heldout_start=cutoff,
                   heldout_end=end, epoch=demand.time_zero)


def _cumulative_at(times: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """How many of `counts` happened at or before each grid time."""
    order = np.argsort(times, kind="stable")
    totals = np.concatenate(([0.0], np.cumsum(counts[order])))
    return totals[np.searchsorted(times[order], grid, side="right")]


@dataclass(frozen=True)
class Recommendation:
    policy: str
    settings: Sizing | None      # ElasticSettings, or a Scaling document (weekly policies)
    reason_code: str
    reason: str
    confidence: float
    evidence: dict = field(default_factory=dict)


def too_little(policy: str, demand: Demand, needed: float = MIN_HISTORY_SECONDS) -> Recommendation | None:
    """The "no recommendation" answer when the history is too short, else None."""
    if demand.history_span >= needed and demand.trace.arrivals:
        return None
    return Recommendation(policy, None, "insufficient_history",
                          f"only {demand.history_span / 3600:.1f} h of history with {len(demand.trace.arrivals)} arrivals; "
                          f"needs {needed / 3600:.0f} h with work in it", 0.0)


def confidence(demand: Demand, ev: dict | None = None) -> float:
    """History seen (1.0 at a week of older history) x how well the recommendation did where it was not
    chosen: 1 when it kept the SLO on the held-out window, SLO / p95 when not; fewer than
    FULL_HOLDOUT_INSTANCES held-out instances lower it in proportion."""
    value = min(1.0, demand.span / FULL_CONFIDENCE_SECONDS)
    if ev and "recommended" in ev:
        p95 = ev["recommended"]["wait_p95_seconds"]
        value *= 1.0 if p95 <= demand.slo_seconds else demand.slo_seconds / p95
        value *= min(1.0, ev["window"]["instances"] / FULL_HOLDOUT_INSTANCES)
    return round(value, 3)


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


def summary(demand: Demand, settings: Sizing) -> dict:
    """Slot-hours and p95 wait of `settings` on the demand's scoring (held-out) window."""
    trace, start, end, _ = demand.scoring_window()
    s = score(replay(trace, settings, startup_delay=demand.startup_delay, epoch=demand.time_zero, start=start,
                     end=end), slo_seconds=demand.slo_seconds)
    return {"slot_hours": round(float(s.slot_hours), 2), "wait_p95_seconds": round(float(s.wait_p95), 1),
            "over_slo_share": round(float(s.share_over_slo), 4)}


def window(demand: Demand) -> dict:
    trace, start, end, kind = demand.scoring_window()
    return {"kind": kind, "start": start, "end": end, "hours": round((end - start) / 3600, 1),
            "chosen_on": [demand.start, demand.end], "instances": trace.instances}


def evidence(demand: Demand, current: Sizing | None, recommended: Sizing) -> dict:
    """Back-test current vs recommended on the held-out window (in-sample when there is none)."""
    out = {"window": window(demand), "slo_seconds": demand.slo_seconds, "recommended": summary(demand, recommended)}
    if demand.budget_slot_hours_per_week is not None:
        out["budget_slot_hours_per_week"] = demand.budget_slot_hours_per_week
    if current is not None:
        out["current"] = summary(demand, current)
    return out


def recommend(policy: str, demand: Demand, current: Sizing | None, settings: Sizing,
              reason_code: str, reason: str, ev: dict | None = None) -> Recommendation:
    ev = evidence(demand, current, settings) if ev is None else ev
    return Recommendation(policy, settings, reason_code, reason, confidence(demand, ev), ev)
