"""`pool-tracker demo`: an emulated cluster at accelerated speed and the daemon tracking it, in one process."""
from __future__ import annotations

import click

from tracker.config import Config
from tracker.daemon import Daemon, exit_now
from tracker.emulator import Emulator


def run_demo(config: Config, pools: int, speed: float, seed: int) -> None:
    config.api.clock = "server"          # the emulator's time runs `speed` times faster than ours
    config.advisor.schedule_seconds = max(1.0, 3600 / speed)   # an advisor round every simulated hour
    with Emulator.running(pools=pools, seed=seed, speed=speed, token="demo-token") as emu:
        config.api.url = emu.url
        daemon = Daemon(config, emu.token)
        daemon.run_until_signalled(on_started=lambda: click.echo(_banner(pools, speed, emu.url, config.store.path,
                                                                         daemon.web.url)))
    exit_now(0)


def _banner(pools: int, speed: float, api: str, db, http: str) -> str:
    return f"""pool-tracker demo: {pools} emulated pools at {speed:g}x speed (a simulated hour every \
{3600 / speed:.0f} s)
  emulated Qarnot API  {api}  (token: demo-token)
  history (DuckDB)     {db}
  metrics (Prometheus) {http}/metrics
  health               {http}/healthz
  SQL                  pool-tracker sql "SELECT * FROM pool_current" --url {http}
  recommendations      pool-tracker recommend --url {http}   (after 6 simulated hours of history)
Ctrl-C stops."""
