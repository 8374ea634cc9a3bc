"""One poll cycle of 10,000 pools (parse, derive, append) against `json.loads` of the same bodies.

The bodies are real `/pools/paginate` pages fetched once from the emulator, so HTTP is not measured.
Two cycles: the first poll (every pool discovered) and a steady-state poll a simulated minute later.

    python benchmarks/bench_poll_cycle.py [--pools 10000]
"""
import argparse
import json
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


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=10_000)
    opts = args.parse_args()
    clock = [1_800_000_000.0]
    with Emulator.running(pools=opts.pools, seed=1, token="bench", clock=lambda: clock[0]) as emu:
        first = fetch_pages(emu)
        clock[0] += 60
        steady = fetch_pages(emu)
    size = sum(map(len, first)) / 1e6
    print(f"{opts.pools} pools, {len(first)} pages, {size:.1f} MB of JSON per poll")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        t_json1, _ = timed(lambda: [json.loads(b) for b in first], repeat=5)
        t_first, n_first = timed(lambda: cycle(store, first, datetime.fromtimestamp(clock[0] - 60, timezone.utc)))
        t_json2, _ = timed(lambda: [json.loads(b) for b in steady], repeat=5)
        t_steady, n_steady = timed(lambda: cycle(store, steady, datetime.fromtimestamp(clock[0], timezone.utc)))
        store.close()
    print(f"json.loads baseline:        {t_json1 * 1000:7.1f} ms")
    print(f"first poll  (all new):      {t_first * 1000:7.1f} ms  {n_first:6d} events  ratio {t_first / t_json1:.2f}x")
    print(f"json.loads baseline:        {t_json2 * 1000:7.1f} ms")
    print(f"steady poll (1 min later):  {t_steady * 1000:7.1f} ms  {n_steady:6d} events  ratio {t_steady / t_json2:.2f}x")


if __name__ == "__main__":
    main()
