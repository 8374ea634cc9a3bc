"""Soak: the daemon (a subprocess) tracking 2,000 emulated pools for a simulated week, printing its
resident memory as it goes. Memory should level off once every pool is known, not keep growing.

    python benchmarks/soak_daemon.py [--pools 2000] [--days 7] [--speed 5000]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tracker.emulator import Emulator


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--pools", type=int, default=2000)
    args.add_argument("--days", type=float, default=7)
    args.add_argument("--speed", type=float, default=5000)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            Emulator.running(pools=opts.pools, seed=3, speed=opts.speed, token="soak") as emu:
        port = free_port()
        env = {**os.environ, "QARNOT_CLUSTER_URL": emu.url, "QARNOT_CLIENT_TOKEN": "soak",
               "POOL_TRACKER_API_CLOCK": "server", "POOL_TRACKER_POLL_JITTER_SECONDS": "0",
               "POOL_TRACKER_LOG_LEVEL": "WARNING"}
        db = Path(tmp) / "soak.duckdb"
        proc = subprocess.Popen([sys.executable, "-m", "tracker", "run", "--db", str(db), "--interval", "2",
                                 "--metrics-port", str(port)], env=env)
        daemon = psutil.Process(proc.pid)
        start_sim, start = emu.clock(), time.monotonic()
        print(f"{'sim day':>8} {'real s':>7} {'RSS MB':>7} {'polls':>6} {'events':>9} {'db MB':>6}")
        try:
            while emu.clock() - start_sim < opts.days * 86400:
                time.sleep(10)
                try:
                    rows = httpx.post(f"http://127.0.0.1:{port}/sql", timeout=30, json={
                        "query": "SELECT (SELECT count(*) FROM polls), (SELECT count(*) FROM events)"}).json()["rows"]
                except httpx.TransportError:
                    continue
                print(f"{(emu.clock() - start_sim) / 86400:8.2f} {time.monotonic() - start:7.0f} "
                      f"{daemon.memory_info().rss / 1e6:7.1f} {rows[0][0]:6d} {rows[0][1]:9d} "
                      f"{db.stat().st_size / 1e6:6.1f}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
