"""How far arrivals inferred from count changes are from the real tasks, on emulated pools.

    python benchmarks/bench_task_inference.py [--pools 12] [--hours 8] [--poll 30] [--seed 3]

One run: the emulator's seeded cluster (every workload pattern; elastic, static, multi-slot and scaling
pools) on a hand-moved clock, the tracker polling it and collecting its tasks every --poll simulated
seconds into a DuckDB file. Then, per pool still running at the end, both traces the back-tester can
replay (`backtest --pool --arrivals tasks|counts`) are compared with the emulator's own truth:
- arrivals: instances found vs real, and the arrival gap: the area between the cumulative arrival curves
  (real vs inferred) per real instance, in seconds; late arrivals add their delay, and an instance never
  seen (it came and went between two polls) adds the rest of the window;
- run time: the mean run time of an instance, real vs inferred;
- slot-hours: each trace replayed under the pool's own settings from the pool's creation (so the
  replay's resize ticks fall where the emulator's did) vs the slot-hours the emulator billed (the
  baseline, measured in the same run), and the p95 wait replayed vs the real one.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from policies.backtest import replay, weighted_quantiles
from policies.traces import TraceError
from tracker.api import QarnotClient
from tracker.backtest_cmd import load_trace
from tracker.client import Target
from tracker.collect_tasks import TaskCollector
from tracker.config import Tasks
from tracker.emulator import Emulator
from tracker.emulator.cluster import NOT_RUNNING
from tracker.poll import poll_once
from tracker.store import Store

START = 1_800_000_000.0   # Friday 2027-01-15 08:00 UTC


class HandClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(pools: int, hours: float, poll: float, seed: int, path: Path):
    """The tracker's history and tasks of an emulated cluster; -> (cluster, first poll, last poll)."""
    from datetime import datetime, timezone

    clock = HandClock(START)
    with Emulator.running(pools=pools, seed=seed, token="bench-token", clock=clock) as emu:
        client, store = QarnotClient(emu.url, emu.token), Store(path)
        collector = TaskCollector(client, store, Tasks())
        now = lambda: datetime.fromtimestamp(clock.now, timezone.utc)   # noqa: E731
        first = clock.now
        while clock.now <= START + hours * 3600:
            poll_once(client, store, clock=now)
            collector.collect(now())
            clock.now += poll
        store.close()
        return emu.cluster, first, clock.now - poll


def arrival_lag(real, inferred, start: float, end: float) -> float:
    """Area between the cumulative instance-arrival curves over [start, end], per real instance (seconds)."""
    grid = np.linspace(start, end, 20_001)
    curves = []
    for trace in (real, inferred):
        times = np.array([a for a, _, _ in trace.arrivals])
        counts = np.cumsum([n for _, n, _ in trace.arrivals])
        index = np.searchsorted(times, grid, side="right")
        curves.append(np.where(index > 0, counts[np.maximum(index - 1, 0)], 0))
    area = np.abs(curves[0] - curves[1]).sum() * (end - start) / len(grid)
    return float(area / max(real.instances, 1))


def mean_run(trace) -> float:
    return sum(n * d for _, n, d in trace.arrivals) / max(trace.instances, 1)


def p95(run) -> float:
    return weighted_quantiles(run.waits, run.counts, (0.95,))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=12)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--poll", type=float, default=30.0, help="simulated seconds between polls")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        began = time.perf_counter()
        cluster, first, last = record(args.pools, args.hours, args.poll, args.seed, path)
        print(f"recorded {args.pools} pools, {args.hours:g} simulated hours, a poll and a tasks run every "
              f"{args.poll:g} s, in {time.perf_counter() - began:.1f} s")
        target = Target(None, path)
        header = (f"{'pool':<22} {'tasks':>5} {'inst real/inferred':>18} {'arrival gap s':>13} {'run s real/inf':>14} "
                  f"{'slot-h billed':>13} {'err tasks':>9} {'err counts':>10} {'p95 real':>8} {'tasks':>6} {'counts':>6}")
        print(header)
        summary = {"tasks": [], "counts": [], "arrival": [], "run": [], "missed": []}
        for pool in sorted(cluster.pools.values(), key=lambda p: p.name):
            if pool.state in NOT_RUNNING:
                print(f"{pool.name:<22} skipped: {pool.state} during the window (a replay knows no closing)")
                continue
            try:
                real, _, end, _, _ = load_trace(None, pool.uuid, target, "tasks")
            except TraceError:
                print(f"{pool.name:<22} skipped: no task arrived in the window")
                continue
            inferred, *_ = load_trace(None, pool.uuid, target, "counts")
            start = pool.created
            settings = pool.scaling or pool.settings
            billed = cluster.billed_slot_seconds(pool.uuid, start, end)
            runs = {name: replay(trace, settings, start=start, end=end) for name, trace in
                    (("tasks", real), ("counts", inferred))}
            errors = {name: (run.slot_seconds - billed) / billed * 100 if billed else float("nan")
                      for name, run in runs.items()}
            truth = [(at - t.created, n) for t in cluster.tasks.visible(end) if t.pool == pool.uuid
                     and t.created >= start for at, n in t.starts if at <= end]
            truth += [(end - t.created, t.instances - sum(n for at, n in t.starts if at <= end))
                      for t in cluster.tasks.visible(end) if t.pool == pool.uuid and t.created >= start]
            truth = [(w, n) for w, n in truth if n > 0]
            real_p95 = weighted_quantiles(np.array([w for w, _ in truth]), np.array([n for _, n in truth]),
                                          (0.95,))[0] if truth else 0.0
            arrival, runs_real, runs_inferred = arrival_lag(real, inferred, start, end), mean_run(real), mean_run(inferred)
            print(f"{pool.name:<22} {len(real.arrivals):>5} {real.instances:>9}/{inferred.instances:<8} "
                  f"{arrival:>13.1f} {runs_real:>6.0f}/{runs_inferred:<7.0f} {billed / 3600:>13.1f} {errors['tasks']:>+8.2f}% "
                  f"{errors['counts']:>+9.2f}% {real_p95:>8.0f} {p95(runs['tasks']):>6.0f} {p95(runs['counts']):>6.0f}")
            if billed:
                summary["tasks"].append(abs(errors["tasks"]))
                summary["counts"].append(abs(errors["counts"]))
            summary["arrival"].append(arrival)
            summary["run"].append(abs(runs_inferred - runs_real) / runs_real * 100)
            summary["missed"].append((real.instances - inferred.instances) / real.instances * 100)
        tasks, counts = np.nanmean(summary["tasks"]), np.nanmean(summary["counts"])
        print(f"\nmean |slot-hour error| vs the emulator's billing (the baseline): real tasks {tasks:.4f}%, "
              f"inferred from counts {counts:.3f}%")
        print(f"inference, polling every {args.poll:g} s: {np.mean(summary['missed']):.1f}% of instances missed "
              f"(they came and went between polls), an arrival gap of {np.mean(summary['arrival']):.0f} s per instance, "
              f"mean run time {np.mean(summary['run']):.1f}% off; real tasks: exact (dates to the microsecond)")


if __name__ == "__main__":
    main()
