"""Idle headroom: keep as many idle slots as the bursts that arrive within one slot start-up, and keep
an idle slot about as long as a new one takes to start (the ski-rental rule: once idling has cost as
much as a cold start, release)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "idle-headroom"


@dataclass(frozen=True)
class Config:
    burst_percentile: float = 90.0     # of instances arriving within one start-up delay
    max_idle_share: float = 0.25       # never more idle slots than this share of the maximum
    min_busy_share: float = 0.5        # below this share of time with work, idle slots cost more than they save


def idle_headroom(demand: Demand, current: ElasticSettings | None, config: Config = Config()) -> Recommendation:
    if (short := too_little(NAME, demand)) is not None:
        return short
    arrivals = np.array(demand.trace.arrivals, dtype=float)
    bins = ((arrivals[:, 0] - demand.start) // max(demand.startup_delay, 1.0)).astype(int)
    per_window = np.bincount(bins, weights=arrivals[:, 1])
    burst = float(np.percentile(per_window[per_window > 0], config.burst_percentile))
    busy_share = float(np.mean(demand.curve()[1] > 0))
    keep = math.ceil(demand.startup_delay)
    if busy_share < config.min_busy_share:
        settings = clamp_settings(current, min_idle_slots=0, min_idle_time_seconds=keep)
        return recommend(NAME, demand, current, settings, "mostly_idle",
                         f"work is present only {busy_share:.0%} of the time: standing idle slots would cost "
                         f"more than the start-ups they save; idle slots kept {keep} s")
    ceiling = current.max_total_slots if current is not None else max(1, math.ceil(per_window.max()))
    idle = min(math.ceil(burst), math.floor(config.max_idle_share * ceiling))
    settings = clamp_settings(current, min_idle_slots=idle, min_idle_time_seconds=keep)
    return recommend(NAME, demand, current, settings, "burst_headroom",
                     f"p{config.burst_percentile:.0f} of bursts is {burst:.0f} instances within one "
                     f"{demand.startup_delay:.0f} s start-up; idle slots kept {keep} s")
