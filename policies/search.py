"""Search: back-test candidates around the other policies' proposals and the current settings on the
pool's own history, and pick the cheapest whose p95 wait stays within the SLO. Candidates within
`cost_tolerance` of the cheapest count as equally cheap: among them the one with the fewest instances
over the SLO, then the shortest worst wait, wins (saving 0.2% is not worth a 25-minute wait)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from policies.backtest import backtest
from policies.recommendation import Demand, Recommendation, clamp_settings, recommend, too_little
from policies.settings import ElasticSettings

NAME = "search"


@dataclass(frozen=True)
class Config:
    max_scales: tuple = (0.75, 1.0, 1.25)
    idle_times: tuple = (0, 60, 300)
    factors: tuple = (0.5, 1.0)
    cost_tolerance: float = 0.01


def candidates(demand: Demand, current: ElasticSettings | None, seeds: list[ElasticSettings],
               config: Config) -> list[ElasticSettings]:
    out = {s for s in seeds}
    if current is not None:
        out.add(current)
    for seed, scale, idle_time, factor in itertools.product(seeds, config.max_scales, config.idle_times,
                                                            config.factors):
        out.add(clamp_settings(seed, max_total_slots=max(1, round(seed.max_total_slots * scale)),
                               min_idle_time_seconds=idle_time, resize_factor=factor))
    return sorted(out, key=lambda s: (s.max_total_slots, s.min_idle_slots, s.min_idle_time_seconds,
                                      s.resize_factor, s.min_total_slots, s.resize_period))


def search(demand: Demand, current: ElasticSettings | None, config: Config = Config(),
           proposals: tuple[Recommendation, ...] | None = None) -> Recommendation:
    if (short := too_little(NAME, demand)) is not None:
        return short
    if proposals is None:
        from policies.registry import proposals_for   # the other policies, run here when not given
        proposals = proposals_for(demand, current)
    seeds = [p.settings for p in proposals if p.settings is not None] or [clamp_settings(current)]
    scored = [(backtest(demand.trace, s, startup_delay=demand.startup_delay, slo_seconds=demand.slo_seconds), s)
              for s in candidates(demand, current, seeds, config)]
    within = [(score, s) for score, s in scored if score.wait_p95 <= demand.slo_seconds]
    if within:
        affordable = min(score.slot_hours for score, _ in within) * (1 + config.cost_tolerance)
        chosen, best = min(((score, s) for score, s in within if score.slot_hours <= affordable),
                           key=lambda item: (item[0].share_over_slo, item[0].wait_max, item[0].slot_hours))
        cost, p95 = chosen.slot_hours, chosen.wait_p95
        code, why = "cheapest_within_slo", (f"cheapest (to {config.cost_tolerance:.0%}) of {len(scored)} back-tested "
                                            f"candidates keeping p95 wait within {demand.slo_seconds:.0f} s "
                                            f"({p95:.0f} s, {cost:.1f} slot-hours)")
    else:
        p95, cost, best = min((score.wait_p95, score.slot_hours, s) for score, s in scored)
        code, why = "no_candidate_meets_slo", (f"none of {len(scored)} candidates keeps p95 wait within "
                                               f"{demand.slo_seconds:.0f} s; the fastest waits {p95:.0f} s")
    return recommend(NAME, demand, current, best, code, why)
