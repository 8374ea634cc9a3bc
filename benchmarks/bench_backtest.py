"""Back-testing speed and the baseline table.

1. One 30-day replay of a busy pool (aim: well under 100 ms), against a baseline of merely reading
   the same arrivals into Python tuples in the same run.
2. A search over 1,000 candidate settings on that trace with 2 worker processes (aim: about a minute).
3. Baselines on the shipped traces (benchmarks/traces/*.csv): static slots at peak demand, and the SDK's
   default elastic settings with maxTotalSlots at peak.

    python benchmarks/bench_backtest.py [--candidates 1000] [--workers 2]
"""
import argparse
import itertools
import random
import time
from multiprocessing import Pool
from pathlib import Path

import pandas as pd

from policies.backtest import backtest, baselines, replay, score
from policies.settings import ElasticSettings
from policies.traces import Trace, read_csv

TRACES = Path(__file__).with_name("traces")
DAY = 86400


def busy_pool(days=30, seed=7) -> Trace:
    """A busy render pool: a task every ~2.5 minutes, each of 1-64 instances of ~15 minutes."""
    rng, t, rows = random.Random(seed), 0.0, []
    while t < days * DAY:
        t += rng.expovariate(1 / 150)
        rows.append((round(t, 1), rng.choice((1, 2, 4, 8, 16, 32, 64)), round(900 * rng.lognormvariate(0, 0.5), 1)))
    return Trace(tuple(rows))


def candidates(n):
    grid = itertools.product((40, 80, 120, 160, 200, 240, 320, 400), (0, 1, 2, 4, 8), (0, 60, 300, 900, 1800),
                             (0.25, 0.5, 1.0), (30, 60, 90, 300, 600))
    return [ElasticSettings(0, mx, idle, t, f, p) for mx, idle, t, f, p in itertools.islice(grid, n)]


TRACE = None


def _score(settings):
    return backtest(TRACE, settings).slot_hours


def _init(trace):
    global TRACE
    TRACE = trace


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--candidates", type=int, default=1000)
    args.add_argument("--workers", type=int, default=2)
    opts = args.parse_args()

    trace = busy_pool()
    events = len(trace.arrivals)
    start = time.perf_counter()
    _ = [tuple(r) for r in trace.arrivals]  # baseline: touch every arrival once in Python
    t_base = time.perf_counter() - start
    settings = ElasticSettings(0, 200, 2, 300, 0.5, 90)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run = replay(trace, settings)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    result = score(run)
    t_score = time.perf_counter() - start
    print(f"busy pool, 30 days: {events:,} tasks, {trace.instances:,} instances, {len(run.waits):,} starts, "
          f"{len(run.timeline):,} supply/demand changes")
    print(f"replay {min(times) * 1000:.1f} ms (best of 5) + scoring {t_score * 1000:.1f} ms; "
          f"baseline (copy the arrivals) {t_base * 1000:.1f} ms, ratio {min(times) / t_base:.0f}x")
    print(f"  slot-hours {result.slot_hours:,.0f}, p95 wait {result.wait_p95:.0f} s")

    pool = candidates(opts.candidates)
    start = time.perf_counter()
    with Pool(opts.workers, initializer=_init, initargs=(trace,)) as workers:
        costs = workers.map(_score, pool, chunksize=8)
    elapsed = time.perf_counter() - start
    print(f"search: {len(pool)} candidates on {opts.workers} processes in {elapsed:.1f} s "
          f"({elapsed / len(pool) * 1000 * opts.workers:.0f} ms per candidate per core); "
          f"cheapest {min(costs):,.0f} slot-hours")

    table = []
    for path in sorted(TRACES.glob("*.csv")):
        shipped = read_csv(path.read_text())
        for label, knobs in baselines(shipped).items():
            s = backtest(shipped, knobs)
            table.append({"trace": path.stem, "baseline": label, "slot_hours": round(s.slot_hours, 1),
                          "idle_slot_hours": round(s.idle_slot_hours, 1), "wait_p95_s": round(s.wait_p95, 1),
                          "over_slo_%": round(100 * s.share_over_slo, 2), "under_acc_%": round(s.under_accuracy, 2),
                          "over_acc_%": round(s.over_accuracy, 1), "instability_%": round(s.instability, 1)})
    print(pd.DataFrame(table).to_string(index=False))


if __name__ == "__main__":
    main()
