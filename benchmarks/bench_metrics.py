"""Scrape time of /metrics with 10,000 pools tracked (aim: under 100 ms), against a baseline of dumping
the same views as JSON in the same process.

    python benchmarks/bench_metrics.py [--pools 10000]
"""
import argparse
import statistics
import time
from dataclasses import asdict
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
    t_scrape, (body, _) = timed(metrics.exposition)
    t_json, _ = timed(lambda: orjson.dumps([asdict(v) for v in pools], default=str))
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"{opts.pools} pools -> {series:,} series, {len(body) / 1e6:.1f} MB exposition")
    print(f"/metrics scrape (median of 10): {t_scrape * 1000:7.1f} ms")
    print(f"baseline: views as JSON        {t_json * 1000:7.1f} ms   ratio {t_scrape / t_json:.1f}x")


if __name__ == "__main__":
    main()
