"""Target tracking in the style of Kubernetes' HPA: slots = demand / target utilisation, a tolerance
band around the current setting, and a scale-down stabilisation window (the highest need seen in it)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "target-tracking"


@dataclass(frozen=True)
class Config:
    target_utilization: float = 0.8     # busy share of slots to aim for
    tolerance: float = 0.1              # within this relative change, keep the current maximum
    stabilization_seconds: float = 3600.0
    window_seconds: float = 7 * 86400.0


def target_tracking(demand: Demand, current: ElasticSettings | None, config: Config = Config()) -> Recommendation:
    if (short := too_little(NAME, demand)) is not None:
        return short
    grid, need = demand.curve()
    need = need[grid >= demand.end - config.window_seconds] / config.target_utilization
    steps = max(1, int(config.stabilization_seconds // 60))
    stabilized = np.array([need[max(0, i - steps + 1):i + 1].max() for i in range(0, len(need), steps)])
    desired_max = math.ceil(stabilized.max())
    if current is not None and current.max_total_slots and \
            abs(desired_max / current.max_total_slots - 1) <= config.tolerance:
        desired_max = current.max_total_slots
        code, why = "within_tolerance", (f"peak need {stabilized.max():.0f} slots at {config.target_utilization:.0%}"
                                         f" utilisation is within {config.tolerance:.0%} of the current maximum")
    else:
        code, why = "scale_to_target", (f"peak need over the window is {stabilized.max():.0f} slots at "
                                        f"{config.target_utilization:.0%} target utilisation")
    settings = clamp_settings(current, max_total_slots=desired_max)
    return recommend(NAME, demand, current, settings, code, why)
