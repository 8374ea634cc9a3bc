"""Scrape time of /metrics with 10,000 pools tracked, against a baseline of dumping the same views as JSON
in the same process, and against its floor: copying the served bytes once. Target: a scrape with no change
since the last <= 200 ms for 50,000 pools.

    python benchmarks/bench_metrics.py [--pools 10000]
"""
import argparse
import statistics
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone

import orjson

from policies.settings import ElasticSettings
from tracker.events import PoolView
from tracker.metrics import TrackerMetrics
from tracker.snapshot import STATES


def views(n):
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [PoolView(f"{i:08d}-0000-4000-8000-000000000000", name=f"pool-{i}", profile="docker-batch",
                     tags=("team-a", "prod"), state=STATES[i % len(STATES)], state_since=since,
                     running_instances=i % 40, running_cores=4 * (i % 40), queued_or_running=i % 70,
                     settings=ElasticSettings(0, 40, 1, 300, 0.5, 90), execution_seconds=float(i * 100))
            for i in range(n)]


def timed(fn, repeat=10):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), out


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=10_000)
    opts = args.parse_args()
    pools = views(opts.pools)
    metrics = TrackerMetrics(lambda: pools)
    t_cold, _ = timed(metrics.exposition, repeat=1)

    def after_a_poll_changing_10_percent():
        for i in range(0, len(pools), 10):
            pools[i] = replace(pools[i], running_instances=pools[i].running_instances + 1)
        return metrics.exposition()

    t_poll, _ = timed(after_a_poll_changing_10_percent)
    t_scrape, (body, _) = timed(metrics.exposition)
    t_json, _ = timed(lambda: orjson.dumps([asdict(v) for v in pools], default=str))
    t_copy, _ = timed(lambda: bytearray(body))
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"{opts.pools} pools -> {series:,} series, {len(body) / 1e6:.1f} MB exposition")
    print(f"first scrape (every pool new):          {t_cold * 1000:7.1f} ms")
    print(f"scrape after a poll changed 10% of pools: {t_poll * 1000:7.1f} ms (median of 10)")
    print(f"scrape with no change since the last:     {t_scrape * 1000:7.1f} ms (median of 10; target <= 200 ms "
          f"at 50,000 pools); floor, copying the {len(body) / 1e6:.0f} MB once: {t_copy * 1000:.1f} ms, "
          f"{t_scrape / t_copy:.1f}x the floor")
    print(f"baseline: the views dumped as JSON:       {t_json * 1000:7.1f} ms; "
          f"ratios {t_cold / t_json:.2f}x, {t_poll / t_json:.2f}x, {t_scrape / t_json:.2f}x")


if __name__ == "__main__":
    main()
