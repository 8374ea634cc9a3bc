"""What a poll costs when it lists every pool vs only the live ones, for an account of mostly finished pools.

    python benchmarks/bench_live_polling.py [--live 1000] [--finished 9000] [--repeat 5]

Against the emulator in its own process (as the real API would be; HTTP on 127.0.0.1; a DuckDB file):
after one full poll has recorded the account, the median of --repeat steady polls of each kind:
- every pool, full documents (the baseline: what every poll did before);
- live pools only, full documents (`poll.select_fields = false`);
- live pools only, the fields the tracker reads (`POST /pools/search` with `select`; the default).
For each: API bytes per poll (as received over the wire), the tracker's own CPU time per poll (this
process; the emulator's time is not counted), and the wall time. Then bytes per day at a 30 s interval
with a full sweep every 900 s (the defaults), before and after.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_collect import TOKEN, emulator_process
from tracker.api import QarnotClient
from tracker.poll import poll_once, server_clock
from tracker.store import Store

DAY, INTERVAL, SWEEP = 86400, 30.0, 900.0


def measure(client: QarnotClient, store: Store, live_only: bool, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        received, cpu, wall = client.bytes_received, time.process_time(), time.perf_counter()
        result = poll_once(client, store, clock=server_clock(client), live_only=live_only)
        assert result.ok, result.message
        runs.append((client.bytes_received - received, time.process_time() - cpu, time.perf_counter() - wall,
                     result.pools_seen))
    return {key: statistics.median(run[i] for run in runs) for i, key in enumerate(("bytes", "cpu", "wall", "pools"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", type=int, default=1000, help="pools running")
    parser.add_argument("--finished", type=int, default=9000, help="pools that ended before the start")
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    proc, url = emulator_process(["--pools", str(opts.live), "--finished", str(opts.finished), "--speed", "1"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = {}
            for name, live_only, select in (("every pool, full documents", False, False),
                                            ("live pools, full documents", True, False),
                                            ("live pools, fields read", True, True)):
                client = QarnotClient(url, TOKEN, page_size=5000, select_fields=select)
                store = Store(Path(tmp) / f"{len(rows)}.duckdb")
                assert poll_once(client, store, clock=server_clock(client)).ok      # the account, recorded once
                rows[name] = measure(client, store, live_only, opts.repeat)
                assert client.search_refused is None
                store.close()
                client.close()
    finally:
        proc.terminate()
        proc.wait()
    base = rows["every pool, full documents"]
    print(f"account: {opts.live} live + {opts.finished} finished pools; median of {opts.repeat} steady polls")
    print(f"{'listing':30} {'pools':>6} {'API bytes':>11} {'x base':>7} {'tracker CPU':>12} {'x base':>7} {'wall':>9}")
    for name, row in rows.items():
        print(f"{name:30} {row['pools']:6.0f} {row['bytes'] / 1e6:9.2f} MB {row['bytes'] / base['bytes']:7.3f} "
              f"{row['cpu'] * 1000:9.1f} ms {row['cpu'] / base['cpu']:7.3f} {row['wall'] * 1000:6.0f} ms")
    polls, sweeps = DAY / INTERVAL, DAY / SWEEP
    after = rows["live pools, fields read"]
    before_day = polls * base["bytes"]
    after_day = (polls - sweeps) * after["bytes"] + sweeps * base["bytes"]
    print(f"API bytes per day, a poll every {INTERVAL:g} s: before {before_day / 1e9:.2f} GB (every poll lists every "
          f"pool); after {after_day / 1e9:.2f} GB (live pools, fields read, a full sweep every {SWEEP:g} s): "
          f"x{after_day / before_day:.3f}")
    cpu_before = polls * base["cpu"]
    cpu_after = (polls - sweeps) * after["cpu"] + sweeps * base["cpu"]
    print(f"tracker CPU per day: before {cpu_before / 60:.1f} min, after {cpu_after / 60:.1f} min "
          f"(x{cpu_after / cpu_before:.3f})")


if __name__ == "__main__":
    main()
