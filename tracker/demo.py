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
        http = f"http://{config.http.host}:{config.http.port}"
        click.echo(f"""pool-tracker demo: {pools} emulated pools at {speed:g}x speed (a simulated hour every \
{3600 / speed:.0f} s)
  emulated Qarnot API  {emu.url}  (token: demo-token)
  history (DuckDB)     {config.store.path}
  metrics (Prometheus) {http}/metrics
  health               {http}/healthz
  SQL                  pool-tracker sql "SELECT * FROM pool_current" --url {http}
  recommendations      pool-tracker recommend --url {http}   (after 6 simulated hours of history)
Ctrl-C stops.""")
        daemon.run_until_signalled()
    exit_now(0)
