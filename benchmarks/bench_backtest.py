"""Back-testing speed and the baseline table.

1. 30-day replays of busy pools (a task of 1-64 instances every 150, 300, 600 s; aim: well under
   100 ms), with the compiled model (setup.py) against the same model interpreted, in the same run.
   Replay time grows with tasks and starts: the table states both. The same settings inside a weekly
   scaling document show what policy switches cost (with the same knobs) and what a Fixed window does.
2. A search over 1,000 candidate settings with 2 worker processes (aim: about a minute), on the pool
   with a task every `--search-gap` seconds.
3. Baselines on the shipped traces (benchmarks/traces/*.csv): static slots at peak demand, and the SDK's
   default elastic settings with maxTotalSlots at peak.

    python benchmarks/bench_backtest.py [--candidates 1000] [--workers 2] [--search-gap 150]
"""
import argparse
import importlib.util
import itertools
import random
import sys
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import pandas as pd

from bench_list_pools import best_of   # (repeat, fn) -> (best seconds, result)

import policies.backtest
import policies.model
from policies.backtest import backtest, baselines, replay, score
from policies.scaling import FixedPolicy, Scaling, Weekly
from policies.settings import ElasticSettings
from policies.traces import Trace, read_csv

TRACES = Path(__file__).with_name("traces")
DAY = 86400


def busy_pool(days=30, seed=7, gap=150.0) -> Trace:
    """A busy render pool: a task every `gap` seconds on average, each of 1-64 instances of ~15 minutes."""
    rng, t, rows = random.Random(seed), 0.0, []
    while t < days * DAY:
        t += rng.expovariate(1 / gap)
        rows.append((round(t, 1), rng.choice((1, 2, 4, 8, 16, 32, 64)), round(900 * rng.lognormvariate(0, 0.5), 1)))
    return Trace(tuple(rows))


def candidates(n, seed=3):
    """`n` settings drawn (seeded) from a 3,000-point grid, as a search would spread them."""
    grid = list(itertools.product((40, 80, 120, 160, 200, 240, 320, 400), (0, 1, 2, 4, 8), (0, 60, 300, 900, 1800),
                                  (0.25, 0.5, 1.0), (90, 120, 180, 300, 600)))
    picked = random.Random(seed).sample(grid, min(n, len(grid)))
    return [ElasticSettings(0, mx, idle, t, f, p) for mx, idle, t, f, p in picked]


def load_source(name, path, **replacing):
    """Import a module from its .py file under another name, with `replacing` modules swapped in meanwhile."""
    saved = {key: sys.modules[key] for key in replacing}
    sys.modules.update(replacing)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.modules.update(saved)


def interpreted_replay():
    """`replay` running the model's source interpreted: the baseline for the compiled one."""
    model = load_source("model_interpreted", Path(policies.model.__file__).with_name("model.py"))
    return load_source("backtest_interpreted", policies.backtest.__file__, **{"policies.model": model}).replay


TRACE = None


def _score(settings):
    result = backtest(TRACE, settings)
    return result.slot_hours, result.wait_p95


def _init(trace):
    global TRACE
    TRACE = trace


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--candidates", type=int, default=1000)
    args.add_argument("--workers", type=int, default=2)
    args.add_argument("--search-gap", type=float, default=150.0)
    opts = args.parse_args()

    settings = ElasticSettings(0, 200, 2, 300, 0.5, 90)
    compiled = policies.model.__file__.endswith(".so")
    slow_replay, rows = interpreted_replay(), []
    for gap in (150, 300, 600):
        trace = busy_pool(gap=gap)
        t_replay, run = best_of(5, lambda: replay(trace, settings))
        t_interpreted, slow = best_of(3, lambda: slow_replay(trace, settings))
        t_score, result = best_of(5, lambda: score(run))
        assert score(slow).as_dict() == result.as_dict(), "the compiled and interpreted models disagree"
        rows.append({"task every": f"{gap} s", "tasks": len(trace.arrivals), "instances": trace.instances,
                     "starts": len(run.waits), "replay ms": round(t_replay * 1000, 1),
                     "interpreted ms": round(t_interpreted * 1000, 1), "speed-up": f"{t_interpreted / t_replay:.1f}x",
                     "score ms": round(t_score * 1000, 1), "us per task": round(t_replay / len(trace.arrivals) * 1e6, 1),
                     "mean busy": round(run.busy_seconds / (run.end - run.start)), "p95 wait s": round(result.wait_p95)})
    print(f"30-day replays, settings {settings}, model {'compiled' if compiled else 'NOT compiled'} (best of 5):")
    print(pd.DataFrame(rows).to_string(index=False))
    weekdays = Weekly(("monday", "tuesday", "wednesday", "thursday", "friday"), 8 * 3600, 18 * 3600)
    elastic = Scaling.from_elastic(settings).policies[0]
    trace, weekly = busy_pool(gap=150), []
    t_plain, _ = best_of(5, lambda: replay(trace, settings))
    for label, first in (("the same knobs in a weekday window (switches only)", replace(elastic, name="office",
                                                                                          periods=(weekdays,))),
                         ("Fixed 120 slots in a weekday window", FixedPolicy("office", 120, (weekdays,)))):
        t_weekly, run = best_of(5, lambda: replay(trace, Scaling((first, elastic))))
        weekly.append({"weekly scaling, task every 150 s": label, "starts": len(run.waits),
                       "replay ms": round(t_weekly * 1000, 1), "vs plain": f"{t_weekly / t_plain:.2f}x"})
    print(pd.DataFrame(weekly).to_string(index=False))

    trace = busy_pool(gap=opts.search_gap)
    pool = candidates(opts.candidates)
    start = time.perf_counter()
    with Pool(opts.workers, initializer=_init, initargs=(trace,)) as workers:
        costs = workers.map(_score, pool, chunksize=8)
    elapsed = time.perf_counter() - start
    print(f"search, task every {opts.search_gap:.0f} s: {len(pool)} candidates on {opts.workers} processes in {elapsed:.1f} s "
          f"({elapsed / len(pool) * 1000 * opts.workers:.0f} ms per candidate per core); "
          f"cheapest with p95 wait <= 300 s: {min((c for c, w in costs if w <= 300), default=float('nan')):,.0f} "
          f"slot-hours")

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
