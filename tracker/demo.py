"""`pool-tracker demo`: an emulated cluster at accelerated speed and the daemon tracking it, in one process."""
from __future__ import annotations

import time

import click

from tracker.config import Config
from tracker.daemon import Daemon, exit_now
from tracker.emulator import Emulator, SimClock
from tracker.store import Store


def run_demo(config: Config, pools: int, speed: float, seed: int) -> None:
    config.api.clock = "server"          # the emulator's time runs `speed` times faster than ours
    config.advisor.schedule_seconds = max(1.0, 3600 / speed)   # an advisor round every simulated hour
    config.costs.run_every_seconds = max(1.0, 600 / speed)     # cost and carbon figures every simulated 10 minutes
    config.costs.account_interval_seconds = max(10.0, 300 / speed)
    config.tasks.interval_seconds = max(5.0, 600 / speed)      # tasks every simulated 10 minutes, and ended ones
    config.tasks.sweep_interval_seconds = max(60.0, 3600 / speed)   # swept every simulated hour (well within retention)
    # Simulated time ran ahead of ours in an earlier demo on this file: carry on from there, never rewind.
    clock = SimClock(speed, start=max(time.time(), _history_end(config.store.path)))
    with Emulator.running(pools=pools, seed=seed, speed=speed, token="demo-token", clock=clock) as emu:
        config.api.url = emu.url
        daemon = Daemon(config, emu.token)
        fatal = daemon.run_until_signalled(on_started=lambda: click.echo(_banner(
            pools, speed, emu.url, config.store.path.resolve(), daemon.web.url)))   # works from any folder
    if fatal:
        click.echo(f"pool-tracker: {fatal}", err=True)
        exit_now(2)
    exit_now(0)


def _history_end(path) -> float:
    """Unix time of the last record in an existing demo file (0 for a new one)."""
    if not path.exists():
        return 0.0
    store = Store(path, read_only=True, project=False)
    try:
        return store.last_recorded.timestamp() if store.last_recorded else 0.0
    finally:
        store.close()


def _banner(pools: int, speed: float, api: str, db, http: str) -> str:
    return f"""pool-tracker demo: {pools} emulated pools at {speed:g}x speed (a simulated hour every \
{3600 / speed:.0f} s)
  emulated Qarnot API  {api}  (token: demo-token)
  history (DuckDB)     {db}
  metrics (Prometheus) {http}/metrics
  health               {http}/healthz
  fleet                pool-tracker pools --url {http} --db {db}   (add --watch to follow it)
  SQL                  pool-tracker sql "SELECT * FROM pool_current" --url {http} --db {db}
  recommendations      pool-tracker recommend --url {http} --db {db}   (after 6 simulated hours of history)
  admin token          {db}.admin-token  (sent by the commands above; /sql, /recommendations, /apply need it)
Ctrl-C stops."""
