"""Windowed percentiles in the style of Google's Autopilot: the highest of recent per-window demand peaks,
each decayed by its age beyond a day, plus a safety margin, becomes the maximum.

A window's figure is its peak (`percentile` 100 by default), not a lower percentile of minute samples: a
maximum below the peaks a queue-driven pool meets every day makes work wait for hours (p95 waits from
711 s to 13 h were seen with the hourly p95), which no saving is worth. Peaks of the last day count in full (a
daily peak never fades); decay lets a one-off peak from days ago fade."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "percentiles"


@dataclass(frozen=True)
class Config:
    percentile: float = 100.0    # of the minute samples within each window: 100 is the window's peak
    window_seconds: float = 3600.0
    half_life_seconds: float = 2 * 86400.0
    undecayed_seconds: float = 86400.0   # peaks of the last day count in full: a daily peak never fades
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
        peaks.append(np.percentile(sample, config.percentile) * 0.5 ** (max(age - config.undecayed_seconds, 0) / config.half_life_seconds))
    peak = max(peaks)
    settings = clamp_settings(current, max_total_slots=math.ceil(peak * config.margin), min_total_slots=0)
    what = "peak" if config.percentile >= 100 else f"p{config.percentile:.0f}"
    return recommend(NAME, demand, current, settings, "decayed_percentile_peak",
                     f"the highest age-decayed hourly {what} of demand is {peak:.1f} instances; "
                     f"maximum set {config.margin - 1:.0%} above it")
