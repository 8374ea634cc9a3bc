"""A pool's cost/wait frontier: back-test a grid over the real levers and keep the points no other beats.

Under Qarnot's model, reactive settings are already close to the cheapest on cost; what a user can still
buy is wait: an idle reserve (`minIdleSlots`), a longer idle time, a faster ramp (`scalingFactor`), a
floor (`minTotalSlots`), a higher ceiling, or any of these only during the hours work arrives (a weekly
`Scaling` document: a reserve during working hours, lean otherwise). Each candidate is replayed through
the pool model (`policies.backtest`); a point is (billed slot-hours, p95 wait). The frontier is the set of
points no other point beats on both.

Weekly windows come from the rhythm of the history: the hours of the day whose mean demand is a share of
the busiest hour's (`Grid.rhythm_thresholds`), as one Weekly period on every day (or Monday to Friday when
the weekend is quiet), offered only when demand inside is at least `Grid.min_rhythm` times demand outside.

Pure: numbers in, values out; `progress(done, total)` is an optional callback for a progress bar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from policies.backtest import replay, score
from policies.model import Sizing
from policies.scaling import (ALWAYS, DAY, DAYS, MONDAY, WEEK, FixedPolicy, ManagedTasksQueuePolicy, Scaling,
                              Weekly, format_time)
from policies.settings import ElasticSettings
from policies.traces import Trace

Progress = Callable[[int, int], None]   # (runs done, runs planned so far)
WEEKDAYS = DAYS[:5]


@dataclass(frozen=True)
class Grid:
    """The levers and the values tried (reserves above the peak are left out)."""
    max_scales: tuple = (0.75, 1.0, 1.25, 1.5)       # x the peak demand of the history
    reserves: tuple = (0, 1, 2, 3, 4, 6, 8)               # idle reserves in slots, and as shares of the peak:
    reserve_shares: tuple = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5)   # above 1: bursts
                                                       # larger than any seen yet (capped at each maximum)
    refine: int = 8                                    # reserves tried between two grid levels around the SLO
    idle_times: tuple = (0, 90, 300, 900)
    factors: tuple = (0.2, 0.5, 1.0)
    periods: tuple = (90, 300)
    floors: tuple = (0.25, 0.5)                        # minTotalSlots as quantiles of demand
    rhythm_thresholds: tuple = (0.1, 0.25, 0.5)             # busy hours: mean demand >= this x the busiest hour's
    min_rhythm: float = 2.0                            # inside vs outside mean demand, for a weekly window
    rhythm_days: int = 3                               # days with work inside the window, at least
    max_window_hours: int = 23                         # busy windows span at most this many hours
    schedule_inside: int = 8                           # frontier points tried inside a window (and each
                                                       # with a larger reserve)
    schedule_outside: int = 4                          # frontier points of the cheaper half tried outside it


    def coarse(self) -> "Grid":
        """Fewer values per lever, for long, busy histories: the local search fills in the detail."""
        return replace(self, max_scales=(1.0, 1.5), reserves=(0, 1, 2, 4),
                       reserve_shares=(0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5), idle_times=(0, 300), factors=(0.2, 1.0),
                       periods=(90,), floors=(), rhythm_thresholds=(0.1, 0.25), schedule_inside=4,
                       schedule_outside=2)


@dataclass(frozen=True)
class Point:
    settings: Sizing
    slot_hours: float
    wait_p95: float
    over_slo: float     # share of instances waiting longer than the SLO
    wait_max: float

    def as_dict(self) -> dict:
        return {"slot_hours": round(self.slot_hours, 2), "wait_p95_seconds": round(self.wait_p95, 1),
                "over_slo_share": round(self.over_slo, 4)}


def describe(settings: Sizing | None) -> str:
    """Every knob of the settings, or every policy of a scaling document, on one line."""
    if settings is None:
        return "-"
    if isinstance(settings, ElasticSettings):
        return (f"min={settings.min_total_slots} max={settings.max_total_slots} min_idle={settings.min_idle_slots} "
                f"idle_time={settings.min_idle_time_seconds} factor={settings.resize_factor:g} "
                f"period={settings.resize_period}")
    parts = []
    for policy in settings.policies:
        when = ", ".join(period_text(p) for p in policy.periods)
        if isinstance(policy, FixedPolicy):
            parts.append(f"{policy.name}: Fixed {policy.slots_count} [{when}]")
        else:
            parts.append(f"{policy.name}: min={policy.min_total_slots} max={policy.max_total_slots} "
                         f"min_idle={policy.min_idle_slots} idle_time={policy.min_idle_time_seconds} "
                         f"factor={policy.scaling_factor:g} [{when}]")
    return "; ".join(parts) or "no policy (0 slots)"


def period_text(period) -> str:
    if not isinstance(period, Weekly):
        return "always"
    days = "every day" if len(period.days) == 7 else ("mon-fri" if period.days == WEEKDAYS else ",".join(
        d[:3] for d in period.days))
    return f"{days} {format_time(period.start)[:5]}-{format_time(period.end)[:5]} UTC"


def managed(name: str, settings: ElasticSettings, periods=ALWAYS) -> ManagedTasksQueuePolicy:
    """Legacy knobs as a named ManagedTasksQueue policy (the resize period has no place in a scaling)."""
    return ManagedTasksQueuePolicy(name, settings.min_total_slots, settings.max_total_slots, settings.min_idle_slots,
                                   settings.min_idle_time_seconds, float(settings.resize_factor), tuple(periods))


def elastic_grid(peak: int, need: np.ndarray, grid: Grid, extra: Iterable[ElasticSettings] = ()) -> list[ElasticSettings]:
    """Legacy settings over the levers: max, idle reserve, idle time, factor, period, floor."""
    peak = max(1, int(peak))
    reserves = reserve_levels(peak, grid)
    out = set(extra)
    for scale in grid.max_scales:
        top = max(1, math.ceil(peak * scale))
        factors = grid.factors if scale == 1.0 else (min(grid.factors), max(grid.factors))
        for reserve in reserves:
            if reserve > top:
                continue
            for idle_time in grid.idle_times:
                for factor in factors:
                    out.add(ElasticSettings(0, top, reserve, idle_time, float(factor), 90))
        for period in grid.periods:
            for idle_time in grid.idle_times:
                out.add(ElasticSettings(0, top, 0, idle_time, 1.0, max(90, int(period))))
    top = max(1, math.ceil(peak))
    for q in grid.floors:
        floor = int(np.quantile(need, q)) if len(need) else 0
        for idle_time in grid.idle_times:
            if 0 < floor <= top:
                out.add(ElasticSettings(floor, top, 0, idle_time, 1.0, 90))
    return sorted(out, key=lambda s: (s.max_total_slots, s.min_idle_slots, s.min_idle_time_seconds,
                                      s.resize_factor, s.min_total_slots, s.resize_period))


def reserve_levels(peak: int, grid: Grid) -> list[int]:
    top = math.ceil(peak * max(grid.max_scales))
    return sorted({r for r in grid.reserves if r <= top} | {math.ceil(peak * q) for q in grid.reserve_shares})


def refinements(chosen: ElasticSettings, peak: int, grid: Grid) -> list[ElasticSettings]:
    """Idle reserves between the grid level below `chosen`'s and its own: the SLO is often crossed there."""
    levels = [r for r in reserve_levels(max(1, peak), grid) if r < chosen.min_idle_slots]
    if not levels:
        return []
    low, high = levels[-1], chosen.min_idle_slots
    values = sorted({low + round(i * (high - low) / (grid.refine + 1)) for i in range(1, grid.refine + 1)} - {low, high})
    return [chosen.with_(min_idle_slots=r) for r in values if r <= chosen.max_total_slots]


def evaluate(trace: Trace, candidates: Sequence[Sizing], *, start: float, end: float, epoch: float,
             startup_delay: float, slo: float, progress: Progress | None = None, done: int = 0,
             planned: int | None = None) -> list[Point]:
    """Replay every candidate on [start, end) and score it."""
    out = []
    total = planned if planned is not None else done + len(candidates)
    for i, settings in enumerate(candidates):
        s = score(replay(trace, settings, startup_delay=startup_delay, epoch=epoch, start=start, end=end),
                  slo_seconds=slo)
        out.append(Point(settings, float(s.slot_hours), float(s.wait_p95), float(s.share_over_slo), float(s.wait_max)))
        if progress is not None:
            progress(done + i + 1, total)
    return out


def pareto(points: Iterable[Point]) -> list[Point]:
    """The points no other point beats on both slot-hours and p95 wait (of equal points, the first),
    cheapest first."""
    out: list[Point] = []
    best = math.inf
    for point in sorted(points, key=lambda p: (p.slot_hours, p.wait_p95)):
        if point.wait_p95 < best:
            out.append(point)
            best = point.wait_p95
    return out


def rhythm_windows(grid_times: np.ndarray, need: np.ndarray, epoch: float, grid: Grid) -> list[Weekly]:
    """Weekly windows covering the busy hours of the day, where demand shows a daily rhythm."""
    if len(need) == 0 or grid_times[-1] - grid_times[0] < DAY or need.max() <= 0:
        return []
    second = (grid_times + epoch - MONDAY) % WEEK
    weekday, hour = (second // DAY).astype(int), ((second % DAY) // 3600).astype(int)
    hourly = np.array([need[hour == h].mean() if np.any(hour == h) else 0.0 for h in range(24)])
    weekend = weekday >= 5
    out: list[Weekly] = []
    for threshold in grid.rhythm_thresholds:
        busy = hourly >= threshold * hourly.max()
        if busy.all() or not busy.any():
            continue
        start, end = _covering_arc(busy)
        if (end - start) % 24 > grid.max_window_hours:
            continue
        inside = np.isin(hour, [(start + i) % 24 for i in range((end - start) % 24 or 24)])
        if need[~inside].mean() * grid.min_rhythm > need[inside].mean():
            continue
        days_with_work = np.unique(((grid_times[inside & (need > 0)] + epoch - MONDAY) // DAY).astype(int))
        if len(days_with_work) < grid.rhythm_days:
            continue   # a rhythm is a pattern that repeats: one busy day is not one
        # a quiet weekend is judged on the same hours: weekend busy hours seen, and half as busy
        quiet_weekend = bool(np.any(weekend & inside) and np.any(~weekend & inside)
                             and need[weekend & inside].mean() < 0.5 * need[~weekend & inside].mean())
        for days in ((WEEKDAYS, DAYS) if quiet_weekend else (DAYS,)):
            window = Weekly(days, start * 3600, end % 24 * 3600, name="busy-hours")
            if window not in out:
                out.append(window)
    return out


def _covering_arc(busy: np.ndarray) -> tuple[int, int]:
    """(start hour, end hour) of the shortest circular run of hours holding every busy hour."""
    n = len(busy)
    best_gap, best_at = 0, 0
    for first in range(n):               # the longest circular run of quiet hours is left out
        if busy[first] or not busy[first - 1]:
            continue
        length = 0
        while not busy[(first + length) % n]:
            length += 1
        if length > best_gap:
            best_gap, best_at = length, first
    return (best_at + best_gap) % n, best_at


def schedules(windows: Sequence[Weekly], frontier: Sequence[Point], grid: Grid) -> list[Scaling]:
    """Weekly documents: a frontier setting inside each window, a cheaper one outside it."""
    elastic = [p.settings for p in frontier if isinstance(p.settings, ElasticSettings)]
    if len(elastic) < 2 or not windows:
        return []
    inside = _spread(elastic, grid.schedule_inside)
    # a reserve held only part of the day must cover more of the work that arrives then: one step more too
    inside += [s.with_(min_idle_slots=min(s.max_total_slots, s.min_idle_slots + max(1, s.min_idle_slots // 2)))
               for s in inside if s.min_idle_slots < s.max_total_slots]
    inside = list(dict.fromkeys(inside))
    outside = _spread(elastic[:max(2, len(elastic) // 2)], grid.schedule_outside)
    out = []
    for window in windows:
        for lean in outside:
            for busy in inside:
                if busy != lean and busy.min_idle_slots >= lean.min_idle_slots:
                    out.append(Scaling((managed("busy-hours", busy, (window,)), managed("off-hours", lean))))
    return out


def _spread(items: list, count: int) -> list:
    """Up to `count` items evenly spread from first to last."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


IDLE_TIMES = (0, 60, 90, 120, 300, 600, 900, 1800, 3600)
FACTORS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def _around(value, ladder) -> list:
    """The values next to `value` on a ladder (or the ladder's ends around a value off it)."""
    lower = [v for v in ladder if v < value]
    upper = [v for v in ladder if v > value]
    return ([lower[-1]] if lower else []) + ([upper[0]] if upper else [])


def _knob_steps(s: ElasticSettings) -> list[ElasticSettings]:
    out = []
    for reserve in {s.min_idle_slots - 1, s.min_idle_slots + 1, s.min_idle_slots + max(1, s.min_idle_slots // 4),
                    s.min_idle_slots - max(1, s.min_idle_slots // 4)}:
        if 0 <= reserve <= s.max_total_slots:
            out.append(s.with_(min_idle_slots=reserve))
    out += [s.with_(min_idle_time_seconds=v) for v in _around(s.min_idle_time_seconds, IDLE_TIMES)]
    out += [s.with_(resize_factor=v) for v in _around(s.resize_factor, FACTORS)]
    for top in {s.max_total_slots - max(1, s.max_total_slots // 10), s.max_total_slots + max(1, s.max_total_slots // 10)}:
        if max(1, s.min_total_slots, s.min_idle_slots) <= top:
            out.append(s.with_(max_total_slots=top))
    return out


def _as_elastic(policy: ManagedTasksQueuePolicy) -> ElasticSettings:
    return ElasticSettings(policy.min_total_slots, policy.max_total_slots, policy.min_idle_slots,
                           policy.min_idle_time_seconds, policy.scaling_factor, 90)


def neighbours(settings: Sizing) -> list[Sizing]:
    """Settings one step away on one lever: a knob of plain settings; for a two-policy weekly schedule (busy
    hours, then the rest), a knob of either policy, or an hour more or less at either end of the window."""
    if isinstance(settings, ElasticSettings):
        return _knob_steps(settings)
    if len(settings.policies) != 2 or not all(isinstance(p, ManagedTasksQueuePolicy) for p in settings.policies):
        return []
    busy, lean = settings.policies
    if len(busy.periods) != 1 or not isinstance(busy.periods[0], Weekly):
        return []
    window = busy.periods[0]
    out: list[Sizing] = [Scaling((managed(busy.name, s, busy.periods), lean)) for s in _knob_steps(_as_elastic(busy))]
    out += [Scaling((busy, managed(lean.name, s, lean.periods))) for s in _knob_steps(_as_elastic(lean))]
    for start, end in ((window.start - 3600, window.end), (window.start + 3600, window.end),
                       (window.start, window.end - 3600), (window.start, window.end + 3600)):
        start, end = start % DAY, end % DAY
        if start != end and (end - start) % DAY >= 3600:
            moved = Weekly(window.days, start, end, window.name)
            out.append(Scaling((ManagedTasksQueuePolicy(busy.name, busy.min_total_slots, busy.max_total_slots,
                                                        busy.min_idle_slots, busy.min_idle_time_seconds,
                                                        busy.scaling_factor, (moved,)), lean)))
    return out


def climb(start: Point, score_fn: Callable[[list], list], slo: float, steps: int) -> list[Point]:
    """Local search from a point keeping the SLO: move to the cheapest neighbour that still keeps it, while
    one is cheaper; -> every point scored on the way."""
    seen, scored, here = {start.settings}, [], start
    for _ in range(steps):
        fresh = [s for s in neighbours(here.settings) if s not in seen]
        seen.update(fresh)
        points = score_fn(fresh)
        scored += points
        better = [p for p in points if p.wait_p95 <= slo and p.slot_hours < here.slot_hours]
        if not better:
            break
        here = min(better, key=lambda p: (p.slot_hours, p.wait_p95))
    return scored


def frontier_rows(points: Sequence[Point], heldout: dict) -> list[dict]:
    """The frontier as rows: settings (API form and one line), and scores on both windows."""
    return [{"settings": p.settings.to_api(), "describe": describe(p.settings), "kind": _kind(p.settings),
             "train": p.as_dict(), "heldout": heldout[p.settings].as_dict() if p.settings in heldout else None}
            for p in points]


def _kind(settings: Sizing) -> str:
    return "elastic" if isinstance(settings, ElasticSettings) else "scaling"
