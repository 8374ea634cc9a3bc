"""Windowed percentiles in the style of Google's Autopilot: the peak of recent per-window percentiles of
demand, each decayed by its age, plus a safety margin, becomes the maximum."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "percentiles"


@dataclass(frozen=True)
class Config:
    percentile: float = 95.0
    window_seconds: float = 3600.0
    half_life_seconds: float = 2 * 86400.0
    margin: float = 1.15


def percentiles(demand: Demand, current: ElasticSettings | None, config: Config = Config()) -> Recommendation:
    if (short := too_little(NAME, demand)) is not None:
        return short
    grid, need = demand.curve()
    window = ((grid - demand.start) // config.window_seconds).astype(int)
    peaks = []
    for w in np.unique(window):
        sample = need[window == w]
        age = demand.end - (demand.start + (w + 1) * config.window_seconds)
        peaks.append(np.percentile(sample, config.percentile) * 0.5 ** (max(age, 0) / config.half_life_seconds))
    peak = max(peaks)
    settings = clamp_settings(current, max_total_slots=math.ceil(peak * config.margin), min_total_slots=0)
    return recommend(NAME, demand, current, settings, "decayed_percentile_peak",
                     f"the decayed p{config.percentile:.0f} of hourly demand peaks at {peak:.1f} instances; "
                     f"maximum set {config.margin - 1:.0%} above it")
