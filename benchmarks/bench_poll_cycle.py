"""One poll cycle of 10,000 pools (parse, derive, append) against its floor: `orjson.loads` of the same
bodies, which every cycle pays before anything else. Target: a steady cycle <= 3x that floor.

The bodies are real `/pools/paginate` pages fetched once from the emulator, so HTTP is not measured.
Two cycles: the first poll (every pool discovered) and a steady-state poll a simulated minute later,
each the best of `--repeat` runs on a fresh database.

    python benchmarks/bench_poll_cycle.py [--pools 10000] [--repeat 3]
"""
import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import orjson

from tracker.derive import derive_poll
from tracker.emulator import Emulator
from tracker.parse import parse_pool
from tracker.poll import gc_paused
from tracker.store import Store


def fetch_pages(emu, page_size=1000):
    pages, token = [], None
    with httpx.Client(base_url=emu.url, headers={"Authorization": emu.token}, timeout=120) as http:
        while True:
            body = http.post("/pools/paginate", json={"filter": None, "token": token,
                                                      "maximumResults": page_size}).content
            pages.append(body)
            page = orjson.loads(body)
            token = page["nextToken"]
            if not page["isTruncated"]:
                return pages


def cycle(store, pages, now):
    with gc_paused():  # as tracker.poll.poll_once does
        return _cycle(store, pages, now)


def _cycle(store, pages, now):
    snapshots = [parse_pool(doc) for body in pages for doc in orjson.loads(body)["data"]]
    events = derive_poll(store.views, snapshots, now)
    store.append_poll(now, now, events, pools_seen=len(snapshots))
    return len(events)


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def floor(pages):
    """Decoding alone, with the collector paused as in a cycle (else it triples with 1M new objects)."""
    with gc_paused():
        return timed(lambda: [orjson.loads(b) for b in pages], repeat=5)[0]


def both_cycles(first, steady, at):
    """(first, steady) cycle times and event counts on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        t_first, n_first = timed(lambda: cycle(store, first, datetime.fromtimestamp(at - 60, timezone.utc)))
        t_steady, n_steady = timed(lambda: cycle(store, steady, datetime.fromtimestamp(at, timezone.utc)))
        store.close()
    return t_first, n_first, t_steady, n_steady


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=10_000)
    args.add_argument("--repeat", type=int, default=3, help="runs of each cycle; the best counts")
    opts = args.parse_args()
    clock = [1_800_000_000.0]
    with Emulator.running(pools=opts.pools, seed=1, token="bench", clock=lambda: clock[0]) as emu:
        first = fetch_pages(emu)
        clock[0] += 60
        steady = fetch_pages(emu)
    size = sum(map(len, first)) / 1e6
    print(f"{opts.pools} pools, {len(first)} pages, {size:.1f} MB of JSON per poll")
    floor_first, floor_steady = floor(first), floor(steady)
    runs = [both_cycles(first, steady, clock[0]) for _ in range(opts.repeat)]
    t_first, n_first = min(r[0] for r in runs), runs[0][1]
    t_steady, n_steady = min(r[2] for r in runs), runs[0][3]
    print(f"floor, orjson.loads of the first poll:   {floor_first * 1000:7.1f} ms")
    print(f"first poll  (all new):                   {t_first * 1000:7.1f} ms  {n_first:6d} events  "
          f"{t_first / floor_first:.2f}x the floor")
    print(f"floor, orjson.loads of the steady poll:  {floor_steady * 1000:7.1f} ms")
    print(f"steady poll (1 min later):               {t_steady * 1000:7.1f} ms  {n_steady:6d} events  "
          f"{t_steady / floor_steady:.2f}x the floor (target <= 3x)")


if __name__ == "__main__":
    main()
