"""What collecting costs and carbon adds to the state poll, at 10,000 pools.

    python benchmarks/bench_collect.py [--pools 10000] [--repeat 3]

In one run against the emulator (its own process, as the real API would be; HTTP on 127.0.0.1; a DuckDB
file): the poll cycle alone (the baseline,
best of --repeat), then the poll cycle while a collector run fetches credits and carbon facts for its
share of pools in parallel (best of --repeat; the target is at most 1.10x), and how the collector spreads
the account: pools asked per run and runs needed to cover every pool once.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tracker.config import load_config
from tracker.daemon import Daemon

TOKEN = "bench-token-1"


def emulator_process(options: list[str]) -> tuple[subprocess.Popen, str]:
    """`pool-tracker emulator` in its own process on a free port, once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "emulator", "--port", str(port), "--seed", "1",
                             "--token", TOKEN, *options], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(f"{url}/settings", headers={"Authorization": TOKEN}).raise_for_status()
            return proc, url
        except httpx.TransportError:
            assert proc.poll() is None, "the emulator did not start"
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    proc, url = emulator_process(["--pools", str(opts.pools), "--speed", "60"])
    with tempfile.TemporaryDirectory() as tmp:
        config, _ = load_config(env={}, overrides={
            "api.url": url, "api.clock": "server", "store.path": str(Path(tmp) / "b.duckdb"), "http.port": 0,
            "advisor.enabled": False, "api.page_size": 5000})
        daemon = Daemon(config, TOKEN, admin_token="x" * 32)
        daemon.poll()

        def poll_seconds() -> float:
            t0 = time.perf_counter()
            assert daemon.poll().ok
            return time.perf_counter() - t0

        alone = min(poll_seconds() for _ in range(opts.repeat))
        beside, runs, asked = [], 0, 0
        for _ in range(opts.repeat):
            before = len(daemon.costs.last_fetch)
            worker = threading.Thread(target=daemon.collect, args=["pools"])
            worker.start()
            beside.append(poll_seconds())
            worker.join()
            runs, asked = runs + 1, asked + len(daemon.costs.last_fetch) - before
        daemon.store.close()
    proc.terminate()
    proc.wait()
    per_run = config.costs.max_pools_per_run
    print(f"poll cycle, {opts.pools} pools: alone {alone * 1000:.0f} ms, beside a collector run "
          f"{min(beside) * 1000:.0f} ms (x{min(beside) / alone:.2f}; target <= 1.10)")
    print(f"collector: {asked / runs:.0f} pools per run (costs.max_pools_per_run = {per_run}), two requests each, "
          f"{config.costs.concurrency} in flight; {opts.pools / per_run:.0f} runs of "
          f"{config.costs.run_every_seconds:.0f} s cover the account once, instead of {2 * opts.pools} requests at once")


if __name__ == "__main__":
    main()
