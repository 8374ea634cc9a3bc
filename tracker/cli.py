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
