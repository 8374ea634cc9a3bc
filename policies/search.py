"""Search (the default policy): the pool's cost/wait frontier, and its cheapest point that keeps the SLO.

1. On the older history (`Demand.trace`; see `recommendation.holdout`), back-test a grid over every lever
   (`policies.frontier.Grid`: max, idle reserve, idle time, scaling factor, period, floor), the current
   settings and the other policies' proposals; where demand has a daily rhythm, also weekly `Scaling`
   documents (a frontier setting during the busy hours, a leaner one outside them).
2. Candidates keeping the SLO (p95 wait) and the weekly budget on the older history are taken cheapest
   first; near-ties (within `cost_tolerance`) go to fewer instances over the SLO, then to plain settings
   over a weekly document, then to the shorter worst wait. The first one that also keeps the SLO on the held-out window is the recommendation
   (`cheapest_within_slo`). So a setting that breaks the SLO on the held-out window is never recommended
   while some candidate keeps it there (`kept_only_on_heldout` when only candidates that missed it on the
   older history do).
3. When the SLO costs more than the budget, the fastest candidate within budget (`slo_over_budget`), or the
   cheapest when none fits it (`budget_unreachable`); when no candidate keeps the SLO, the fastest on the
   held-out window (`no_candidate_meets_slo`).
The evidence carries the frontier (scored on both windows), the window used, and the trade in one sentence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policies.backtest import peak_demand
from policies.frontier import Grid, Point, Progress, climb, describe, elastic_grid, evaluate, frontier_rows, pareto, \
    period_text, refinements, rhythm_windows, schedules
from policies.model import Sizing
from policies.recommendation import Demand, Recommendation, evidence, recommend, too_little
from policies.scaling import Scaling
from policies.settings import ElasticSettings

NAME = "search"


@dataclass(frozen=True)
class Config:
    grid: Grid = field(default_factory=Grid)
    cost_tolerance: float = 0.01
    weekly: bool = True          # also try weekly schedules where demand has a rhythm
    climb_steps: int = 8         # local search from the cheapest candidates keeping the SLO, one lever at a time
    replay_budget: int = 100_000_000   # candidates x older arrivals: past it, the coarse grid and 4 climb steps


def search(demand: Demand, current: Sizing | None, config: Config = Config(),
           proposals: tuple[Recommendation, ...] | None = None, progress: Progress | None = None) -> Recommendation:
    if (short := too_little(NAME, demand)) is not None:
        return short
    if proposals is None:
        from policies.registry import proposals_for   # the other policies, run here when not given
        proposals = proposals_for(demand, current if isinstance(current, ElasticSettings) else None)
    grid_times, need = demand.curve()
    seeds = [p.settings for p in proposals if p.settings is not None]
    peak = peak_demand(demand.trace)
    grid, steps = config.grid, config.climb_steps
    extra = [s for s in seeds if isinstance(s, ElasticSettings)]
    elastic = elastic_grid(peak, need, grid, extra)
    if len(elastic) * len(demand.trace.arrivals) > config.replay_budget:   # a long, busy history
        grid, steps = grid.coarse(), min(steps, 4)
        elastic = elastic_grid(peak, need, grid, extra)
    others = [s for s in seeds if not isinstance(s, ElasticSettings)] + ([current] if current is not None else [])
    windows = rhythm_windows(grid_times, need, demand.time_zero, grid) if config.weekly else []
    train_end = max([demand.end] + [t + d for t, _, d in demand.trace.arrivals if t < demand.end])
    common = dict(start=demand.start, end=train_end, epoch=demand.time_zero, startup_delay=demand.startup_delay,
                  slo=demand.slo_seconds, progress=progress)
    plan = len(elastic) + len(others) + 2 * len(windows) * grid.schedule_inside * grid.schedule_outside
    points = evaluate(demand.trace, elastic + others, planned=plan, **common)
    schedule = schedules(windows, pareto(points), grid)
    points += evaluate(demand.trace, schedule, done=len(points), **common)
    slo, budget = demand.slo_seconds, demand.budget_slot_hours_per_week
    train_span = train_end - demand.start
    cheapest = min((p for p in points if p.wait_p95 <= slo and isinstance(p.settings, ElasticSettings)),
                   key=lambda p: p.slot_hours, default=None)
    if cheapest is not None:   # the SLO is crossed between two reserve levels: look closer there
        points += evaluate(demand.trace, refinements(cheapest.settings, peak, grid), done=len(points),
                           **common)
    for kind in (ElasticSettings, Scaling):   # then step lever by lever from the cheapest of each kind
        best = min((p for p in points if p.wait_p95 <= slo and isinstance(p.settings, kind)),
                   key=lambda p: (p.slot_hours, p.wait_p95), default=None)
        if best is not None and steps:
            points += climb(best, lambda batch: evaluate(demand.trace, batch, done=len(points), **common), slo, steps)
    done = len(points)

    held: dict = {}

    def heldout(point: Point) -> Point:
        nonlocal done
        if point.settings not in held:
            trace, start, end, _ = demand.scoring_window()
            held[point.settings] = evaluate(trace, [point.settings], start=start, end=end, epoch=demand.time_zero,
                                            startup_delay=demand.startup_delay, slo=demand.slo_seconds)[0]
            done += 1
            if progress is not None:
                progress(done, done)
        return held[point.settings]

    affordable = [p for p in points if budget is None or demand.per_week(p.slot_hours, train_span) <= budget]
    keeping = _order([p for p in affordable if p.wait_p95 <= slo], config.cost_tolerance)
    front = pareto(points)
    fixed_front = pareto(p for p in points if isinstance(p.settings, ElasticSettings))
    for p in front + fixed_front:
        heldout(p)
    chosen = next((p for p in keeping if heldout(p).wait_p95 <= slo), None)
    code = "cheapest_within_slo"
    if chosen is None:
        chosen = next((p for p in sorted(affordable, key=lambda p: (p.slot_hours, p.wait_p95))
                       if p.wait_p95 > slo and heldout(p).wait_p95 <= slo), None)
        code = "kept_only_on_heldout"
    if chosen is None and budget is not None and not affordable:
        chosen = min(points, key=lambda p: (p.slot_hours, p.wait_p95))
        code = "budget_unreachable"
    elif chosen is None and budget is not None and len(affordable) < len(points) and \
            any(p.wait_p95 <= slo for p in points):
        chosen = min(affordable, key=lambda p: (heldout(p).wait_p95, p.slot_hours))
        code = "slo_over_budget"
    if chosen is None:
        chosen = min(points, key=lambda p: (heldout(p).wait_p95, heldout(p).slot_hours))
        code = "no_candidate_meets_slo"
    ev = evidence(demand, current, chosen.settings)
    ev["chosen_on_older_history"] = {**chosen.as_dict(),
                                     "slot_hours_per_week": round(demand.per_week(chosen.slot_hours, train_span), 2)}
    ev["candidates"] = len(points)
    ev["weekly_windows"] = [period_text(w) for w in windows]
    ev["frontier"] = frontier_rows(front, held)
    if chosen not in front:
        ev["frontier"].append({**frontier_rows([chosen], held)[0], "off_frontier": True})
    if windows:   # what plain settings alone reach, to see what the weekly schedules add
        ev["fixed_frontier"] = frontier_rows(fixed_front, held)
    return recommend(NAME, demand, current, chosen.settings, code,
                     _sentence(code, demand, ev, len(points), chosen), ev)


def _order(points: list[Point], tolerance: float) -> list[Point]:
    """Cheapest first; those within `tolerance` of the cheapest first of all, fewest over the SLO and shortest
    worst wait first (saving 0.2% is not worth a 25-minute wait)."""
    points = sorted(points, key=lambda p: (p.slot_hours, p.wait_p95))
    if not points:
        return points
    near = [p for p in points if p.slot_hours <= points[0].slot_hours * (1 + tolerance)]
    return sorted(near, key=lambda p: (p.over_slo, not isinstance(p.settings, ElasticSettings), p.wait_max,
                                       p.slot_hours)) + points[len(near):]


def _sentence(code: str, demand: Demand, ev: dict, count: int, chosen: Point) -> str:
    w, rec, cur = ev["window"], ev["recommended"], ev.get("current")
    where = (f"chosen on {(demand.end - demand.start) / 3600:.0f} h of older history, scored on the "
             f"{w['kind']} last {w['hours']:.0f} h" if w["kind"] == "held-out" else f"scored in-sample over {w['hours']:.0f} h")
    slo = f"p95 wait <= {demand.slo_seconds:.0f} s"
    kind = "weekly schedule" if not isinstance(chosen.settings, ElasticSettings) else "setting"
    if cur:
        change = rec["slot_hours"] / cur["slot_hours"] - 1 if cur["slot_hours"] else 0.0
        if change > 0.005 and rec["wait_p95_seconds"] < cur["wait_p95_seconds"]:
            trade = (f"For {change:+.0%} slot-hours, p95 wait falls from {cur['wait_p95_seconds']:.0f} s to "
                     f"{rec['wait_p95_seconds']:.0f} s")
        elif change < -0.005:
            trade = (f"Saves {-change:.0%} of slot-hours ({cur['slot_hours']:.0f} -> {rec['slot_hours']:.0f}); p95 "
                     f"wait {cur['wait_p95_seconds']:.0f} s -> {rec['wait_p95_seconds']:.0f} s")
        else:
            trade = (f"Same cost to 1% ({rec['slot_hours']:.0f} slot-hours); p95 wait {cur['wait_p95_seconds']:.0f} s "
                     f"-> {rec['wait_p95_seconds']:.0f} s")
    else:
        trade = f"{rec['slot_hours']:.0f} slot-hours at p95 wait {rec['wait_p95_seconds']:.0f} s"
    budget = demand.budget_slot_hours_per_week
    cap = "" if budget is None else f" and a budget of {budget:.0f} slot-hours a week"
    head = {
        "cheapest_within_slo": f"the cheapest of {count} back-tested candidates ({kind}) keeping {slo}{cap}",
        "kept_only_on_heldout": f"no candidate kept {slo}{cap} on the older history; the cheapest keeping it on "
                                f"the held-out window",
        "slo_over_budget": f"keeping {slo} costs more than the budget of {budget} slot-hours a week: the fastest "
                           f"{kind} within budget",
        "budget_unreachable": f"no candidate costs less than the budget of {budget} slot-hours a week: the "
                              f"cheapest is offered",
        "no_candidate_meets_slo": f"none of {count} candidates keeps {slo}; the fastest is offered",
    }[code]
    return f"{trade}: {head} ({where}; {describe(chosen.settings)})."
