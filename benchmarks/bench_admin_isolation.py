"""Analyst SQL never holds up scrapes, health or polls, and a huge result costs little memory.

    python benchmarks/bench_admin_isolation.py [--pools 200] [--threads N]

Runs the emulator and the daemon in this process (HTTP on 127.0.0.1), then measures in one run:
- `/metrics` and `/healthz` latency idle (the baseline) and while a CPU-heavy analyst query runs until
  its time limit interrupts it (the ratio should stay near 1);
- a poll's duration idle and during that query;
- resident memory before and after a 100,000,000-row query answered with its first 10,000 rows.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.emulator import Emulator

ADMIN = "bench-admin-token-0123456789"
SLOW = "SELECT count(*) FROM range(100000) a, range(200000) b WHERE (a.range * b.range) % 7 = 3"


def latencies(url: str, n: int, stop: threading.Event | None = None) -> list[float]:
    out = []
    with httpx.Client() as http:
        while len(out) < n and not (stop is not None and stop.is_set()):
            for path in ("/metrics", "/healthz"):
                t0 = time.perf_counter()
                http.get(f"{url}{path}").raise_for_status()
                out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=200)
    parser.add_argument("--threads", type=int, help="DuckDB threads (sql.threads; default: the config's)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            Emulator.running(pools=opts.pools, seed=1, speed=60.0, token="bench-token-1") as emu:
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "store.path": str(Path(tmp) / "b.duckdb"), "http.port": 0, "advisor.enabled": False,
            "costs.enabled": False, "tasks.enabled": False, "poll.interval_seconds": 3600, "sql.timeout_seconds": 5, "sql.threads": opts.threads})
        daemon = Daemon(config, emu.token, admin_token=ADMIN)
        daemon.start()
        try:
            daemon.poll()
            url = daemon.web.url
            idle = latencies(url, 60)
            poll_idle = min(daemon.poll().duration_seconds for _ in range(3))
            done, answer = threading.Event(), {}

            def slow_query():
                answer["r"] = httpx.post(f"{url}/sql", json={"query": SLOW}, timeout=60,
                                         headers={"Authorization": f"Bearer {ADMIN}"})
                done.set()

            worker = threading.Thread(target=slow_query)
            worker.start()
            time.sleep(0.5)                      # let the query get going (a benchmark, not a test)
            busy = latencies(url, 60, done)
            poll_busy = daemon.poll().duration_seconds
            worker.join()
            process = psutil.Process()
            before = process.memory_info().rss
            big = httpx.post(f"{url}/sql", json={"query": "SELECT range AS x, repeat('a', 20) AS pad FROM "
                                                          "range(100000000)"},
                             headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60).json()
            after = process.memory_info().rss
        finally:
            daemon.stop()
    med = statistics.median
    print(f"analyst query: HTTP {answer['r'].status_code} ({answer['r'].json().get('error', 'ok')[:60]})")
    print(f"/metrics+/healthz median: idle {med(idle) * 1000:.1f} ms, during the query {med(busy) * 1000:.1f} ms "
          f"(x{med(busy) / med(idle):.2f}); p95 during {sorted(busy)[int(0.95 * len(busy))] * 1000:.1f} ms, "
          f"{len(busy)} requests")
    print(f"poll of {opts.pools} pools: idle {poll_idle * 1000:.1f} ms, during the query {poll_busy * 1000:.1f} ms "
          f"(x{poll_busy / poll_idle:.2f})")
    print(f"100M-row query: {len(big['rows'])} rows, truncated={big['truncated']}, resident memory "
          f"{before / 2**20:.0f} -> {after / 2**20:.0f} MB (+{(after - before) / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
