"""One poll cycle of 10,000 pools (parse, derive, append) against its floor: `orjson.loads` of the same
bodies, which every cycle pays before anything else. Target: a steady cycle <= 3x that floor.

The bodies are real `/pools/paginate` pages fetched once from the emulator, so HTTP is not measured.
Two cycles: the first poll (every pool discovered) and a steady-state poll a simulated minute later, in
`--repeat` runs on a fresh database, each cycle beside its floor measured just before it; the best run and
the median ratio are printed, with where the best run's time went.

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
    """One poll cycle as tracker.poll.poll_once runs it; returns its event count and where its time went."""
    with gc_paused():
        return _cycle(store, pages, now)


def _cycle(store, pages, now):
    t0 = time.perf_counter()
    docs = [doc for body in pages for doc in orjson.loads(body)["data"]]
    t1 = time.perf_counter()
    snapshots = [parse_pool(doc) for doc in docs]
    t2 = time.perf_counter()
    events = derive_poll(store.views, snapshots, now)
    t3 = time.perf_counter()
    store.append_poll(now, now, events, pools_seen=len(snapshots))
    t4 = time.perf_counter()
    return len(events), {"decode": t1 - t0, "parse": t2 - t1, "derive": t3 - t2, "append": t4 - t3}


def floor(pages, repeat=3):
    """Decoding alone, with the collector paused as in a cycle (else it triples with 1M new objects)."""
    with gc_paused():
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            [orjson.loads(b) for b in pages]
            best = min(best, time.perf_counter() - start)
        return best


def run(first, steady, at):
    """Both cycles on a fresh database, each beside its floor measured just before it (the machine's load
    moves: a ratio is taken within one run)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        for name, pages, now in (("first", first, at - 60), ("steady", steady, at)):
            bottom = floor(pages)
            start = time.perf_counter()
            events, split = cycle(store, pages, datetime.fromtimestamp(now, timezone.utc))
            out[name] = (time.perf_counter() - start, bottom, events, split)
        store.close()
    return out


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=10_000)
    args.add_argument("--repeat", type=int, default=3, help="runs on a fresh database; the best ratio counts")
    opts = args.parse_args()
    clock = [1_800_000_000.0]
    with Emulator.running(pools=opts.pools, seed=1, token="bench", clock=lambda: clock[0]) as emu:
        first = fetch_pages(emu)
        clock[0] += 60
        steady = fetch_pages(emu)
    size = sum(map(len, first)) / 1e6
    print(f"{opts.pools} pools, {len(first)} pages, {size:.1f} MB of JSON per poll")
    runs = [run(first, steady, clock[0]) for _ in range(opts.repeat)]
    for name, label in (("first", "first poll  (all new)"), ("steady", "steady poll (1 min later)")):
        took, bottom, events, split = min((r[name] for r in runs), key=lambda m: m[0] / m[1])
        ratios = sorted(r[name][0] / r[name][1] for r in runs)
        target = " (target <= 3x)" if name == "steady" else ""
        print(f"{label}: {took * 1000:6.1f} ms, {events:6d} events; floor, orjson.loads of the same bytes: "
              f"{bottom * 1000:6.1f} ms; {took / bottom:.2f}x the floor{target}, median of {len(runs)} runs "
              f"{ratios[len(ratios) // 2]:.2f}x")
        print("    " + ", ".join(f"{part} {seconds * 1000:.0f} ms" for part, seconds in split.items()))


if __name__ == "__main__":
    main()
