"""The `pool-tracker` command line: thin click wrappers that import their module only when run."""
from __future__ import annotations

import click

from tracker import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pool-tracker")
def main() -> None:
    """Watch and right-size elastic Qarnot pools.

    Start with `pool-tracker demo`: an emulated Qarnot cluster, the tracking daemon, metrics and SQL.
    """


@main.command()
@click.option("--port", default=8780, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--pools", default=20, show_default=True, help="Pools in the demo cluster.")
@click.option("--seed", default=0, show_default=True, help="Seed for pools, workloads and faults.")
@click.option("--speed", default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--token", envvar="QARNOT_CLIENT_TOKEN", default="emulator-token", show_default=True,
              help="Token clients must send (default from QARNOT_CLIENT_TOKEN).")
@click.option("--startup-delay", default=60.0, show_default=True, help="Seconds a new slot takes to start.")
@click.option("--fault", "faults", multiple=True, metavar="NAME=VALUE",
              help="Inject faults, e.g. --fault server_errors=0.1 --fault rate_limited=0.05 "
                   "--fault latency_seconds=0.2 --fault malformed_json=0.01 --fault truncated_pages=0.01 "
                   "--fault dropped_connections=0.01 --fault token_invalid_after=1000.")
def emulator(port, host, pools, seed, speed, token, startup_delay, faults):
    """Serve the Qarnot API emulator: pools evolving under simulated work."""
    from tracker.emulator import Emulator, Faults

    try:
        plan = Faults.from_dict({k: float(v) if "." in v else int(v) for k, _, v in (f.partition("=") for f in faults)})
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; write NAME=NUMBER", param_hint="--fault")
    emu = Emulator(pools=pools, seed=seed, speed=speed, token=token, host=host, port=port, faults=plan,
                   startup_delay=startup_delay)
    click.echo(f"Qarnot API emulator on http://{host}:{port} with {pools} pools at {speed}x "
               f"(QARNOT_CLUSTER_URL=http://{host}:{port}; send the token you set with --token). Ctrl-C stops.")
    emu.serve_forever()
