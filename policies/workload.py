"""Seeded demand patterns: what the emulator's pools run and what the shipped traces contain.

Each hour of a workload is drawn from its own RNG, seeded by (seed, pattern, hour), so any time range
gives the same arrivals however it is split into calls, and a months-long emulator run needs no memory
of past hours.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

PATTERNS = ("steady", "diurnal", "bursty", "idle")
HOUR = 3600.0

Arrival = tuple[float, int, float]  # (time, instances, duration_seconds)


@dataclass(frozen=True, slots=True)
class Workload:
    """A demand pattern; `scale` multiplies how much work arrives."""
    pattern: str
    seed: int = 0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown workload pattern {self.pattern!r}; choose one of {', '.join(PATTERNS)}")

    def arrivals(self, t0: float, t1: float) -> list[Arrival]:
        """Arrivals with t0 <= time < t1, in time order."""
        out: list[Arrival] = []
        for hour in range(math.floor(t0 / HOUR), math.ceil(t1 / HOUR)):
            out.extend(a for a in self._hour(hour) if t0 <= a[0] < t1)
        return out

    def _hour(self, hour: int) -> list[Arrival]:
        rng = random.Random(f"{self.seed}:{self.pattern}:{hour}")
        start = hour * HOUR
        return sorted(_DRAW[self.pattern](rng, start, self.scale))


def _poisson_times(rng: random.Random, start: float, rate_per_hour: float) -> list[float]:
    times, t = [], 0.0
    if rate_per_hour <= 0:
        return times
    while True:
        t += rng.expovariate(rate_per_hour / HOUR)
        if t >= HOUR:
            return times
        times.append(start + t)


def _duration(rng: random.Random, median: float) -> float:
    return round(min(median * rng.lognormvariate(0.0, 0.5), 12 * median), 1)


def _steady(rng, start, scale):
    return [(t, rng.randint(1, 2), _duration(rng, 600)) for t in _poisson_times(rng, start, 40 * scale)]


def _diurnal(rng, start, scale):
    hour_of_day = (start / HOUR) % 24
    # Quiet nights, busy afternoons: a rate peaking at 14:00 UTC, 5% of peak at night.
    level = max(0.05, math.sin(math.pi * (hour_of_day - 6) / 16)) if 6 <= hour_of_day <= 22 else 0.05
    return [(t, rng.randint(1, 3), _duration(rng, 900)) for t in _poisson_times(rng, start, 60 * scale * level)]


def _bursty(rng, start, scale):
    out = [(t, 1, _duration(rng, 300)) for t in _poisson_times(rng, start, 4 * scale)]
    if rng.random() < 0.25:  # a burst about every four hours
        t = start + rng.uniform(0, HOUR)
        out.append((t, max(1, round(rng.randint(20, 60) * scale)), _duration(rng, 600)))
    return out


def _idle(rng, start, scale):
    if rng.random() < 0.08:  # a small job every half day or so
        return [(start + rng.uniform(0, HOUR), max(1, round(rng.randint(1, 4) * scale)), _duration(rng, 300))]
    return []


_DRAW = {"steady": _steady, "diurnal": _diurnal, "bursty": _bursty, "idle": _idle}
