"""List 10,000 pools through the emulator with the tracker's client and with the qarnot SDK, in one run.

    python benchmarks/bench_list_pools.py [--pools 10000] [--repeat 3]
"""
import argparse
import time

import qarnot

from tracker.api import QarnotClient
from tracker.emulator import Emulator


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return min(times), count


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=10_000)
    args.add_argument("--repeat", type=int, default=3)
    opts = args.parse_args()
    with Emulator.running(pools=opts.pools, seed=1, speed=1.0, token="bench") as emu:
        emu.cluster.all_pools()  # advance every pool once so both clients see the same work
        tracker = QarnotClient(emu.url, emu.token, page_size=1000)
        sdk = qarnot.connection.Connection(client_token=emu.token, cluster_url=emu.url)
        t_tracker, n1 = best_of(opts.repeat, lambda: len(tracker.list_pools()))
        t_sdk, n2 = best_of(opts.repeat, lambda: sum(1 for _ in sdk.all_pools(summary=False)))
    print(f"pools listed: tracker {n1}, sdk {n2}")
    print(f"tracker QarnotClient.list_pools:   {t_tracker * 1000:8.1f} ms")
    print(f"qarnot SDK all_pools(summary=False): {t_sdk * 1000:8.1f} ms")
    print(f"ratio sdk / tracker: {t_sdk / t_tracker:.2f}x")


if __name__ == "__main__":
    main()
