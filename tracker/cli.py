"""The `pool-tracker` command line: thin click wrappers that import their module only when run."""
from __future__ import annotations

import sys

import click

from tracker import __version__

def fail(message: str) -> None:
    """One line on stderr, exit code 2: how every user mistake ends."""
    click.echo(f"pool-tracker: {message}", err=True)
    sys.exit(2)


def load(config_path, **overrides):
    from tracker.config import ConfigError, load_config

    try:
        return load_config(config_path, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))


def target_for(config, url):
    """Where the daemon (and, failing it, the history file) is, exactly as the daemon of `config` serves."""
    from tracker.client import DaemonError, resolve
    from tracker.config import ConfigError

    try:
        return resolve(config, url)
    except (ConfigError, DaemonError) as exc:
        fail(str(exc))


def url_option(fn):
    return click.option("--url", help="The daemon's URL [default: from the config's http.host and http.admin_port or "
                        "http.port, e.g. http://127.0.0.1:9108]; '' reads the history file only.")(fn)


def db_option(fn):
    return click.option("--db", help="History file, read when no daemon answers [store.path].")(fn)


def writable_file(value):
    """A path a command will write at the end: its folder must exist and be writable now, not after the work."""
    import os
    from pathlib import Path

    if value is None:
        return None
    folder = Path(value).parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable")
    return value


def writable_folder(value):
    """A folder a command writes into: created if missing, refused in one line if it cannot be."""
    import os
    from pathlib import Path

    folder = Path(value)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot create folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable")
    return value


def config_option(fn):
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help="TOML config file (see config/pool-tracker.toml).")(fn)


class OneLineErrors(click.Group):
    """Usage mistakes (a bad flag value, a missing option) end like every other mistake: one line, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:   # a bare group: its help, as usual
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            ctx, names = getattr(exc, "ctx", None), []
            while ctx is not None and ctx.parent is not None:
                names.append(ctx.info_name)
                ctx = ctx.parent
            hint = f" (see: {' '.join(['pool-tracker', *reversed(names)])} --help)"
            click.echo(f"pool-tracker: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pool-tracker")
def main() -> None:
    """Watch and right-size elastic Qarnot pools.

    Start with `pool-tracker demo`: an emulated Qarnot cluster, the tracking daemon, metrics and SQL.
    The daemon also records live pools' tasks (real arrivals, waits, run times: the `tasks` SQL view),
    which `backtest --pool` replays when it has them.
    """


@main.command(short_help='Serve the Qarnot API emulator on 127.0.0.1.')
@click.option("--port", default=8780, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--pools", default=20, show_default=True, type=click.IntRange(min=0), help="Pools in the emulated cluster.")
@click.option("--finished", default=0, show_default=True, type=click.IntRange(min=0),
              help="More pools, which ran and ended (Closed, some Failure) before the start: a big account's history.")
@click.option("--seed", default=0, show_default=True, help="Seed for pools, workloads and faults.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Simulated seconds per real second (> 0).")
@click.option("--token", envvar="QARNOT_CLIENT_TOKEN", default="emulator-token", show_default=True,
              help="Token clients must send (default from QARNOT_CLIENT_TOKEN).")
@click.option("--startup-delay", default=60.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a new slot takes to start (>= 0).")
@click.option("--fault", "faults", multiple=True, metavar="NAME=VALUE",
              help="Inject faults, e.g. --fault server_errors=0.1 --fault rate_limited=0.05 "
                   "--fault latency_seconds=0.2 --fault malformed_json=0.01 --fault truncated_pages=0.01 "
                   "--fault dropped_connections=0.01 --fault token_invalid_after=1000.")
def emulator(port, host, pools, finished, seed, speed, token, startup_delay, faults):
    """Serve the Qarnot API emulator: pools evolving under simulated work, each arrival a task."""
    from tracker.emulator import Emulator, Faults

    try:
        plan = Faults.from_dict({k: float(v) if "." in v else int(v) for k, _, v in (f.partition("=") for f in faults)})
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; write NAME=NUMBER", param_hint="--fault")
    emu = Emulator(pools=pools, seed=seed, speed=speed, token=token, host=host, port=port, faults=plan,
                   startup_delay=startup_delay, finished=finished)
    click.echo(f"Qarnot API emulator on http://{host}:{port} with {pools} pools ({finished} more finished) at {speed}x "
               f"(QARNOT_CLUSTER_URL=http://{host}:{port}; send the token you set with --token). Ctrl-C stops.")
    emu.serve_forever()


@main.command(short_help='Run the daemon: poll Qarnot, record every change.')
@config_option
@click.option("--db", help="DuckDB file holding the history [store.path].")
@click.option("--interval", type=float, help="Seconds between polls [poll.interval_seconds].")
@click.option("--metrics-port", "port", type=int, help="HTTP port for /healthz, /sql [http.port].")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="[log.format]")
def run(config_path, db, interval, port, log_format):
    """Run the daemon: poll the Qarnot API and record every change.

    Polls list live pools only (and only the fields read) between full listings every
    poll.full_sweep_seconds; with [lake] url set, the history is also published to a shared Parquet lake.

    Precedence: defaults < config file < environment (QARNOT_CLUSTER_URL, QARNOT_CLIENT_TOKEN,
    QARNOT_CLUSTER_TIMEOUT, POOL_TRACKER_<SECTION>_<KEY>) < these flags.
    """
    from tracker import logs
    from tracker.api import ApiError
    from tracker.config import ConfigError
    from tracker.daemon import Daemon, exit_now
    from tracker.store import StoreError

    config, token = load(config_path, **{"store.path": db, "poll.interval_seconds": interval, "http.port": port,
                                          "log.format": log_format})
    logs.setup(config.log.format, config.log.level, token)
    try:
        fatal = Daemon(config, token).run_until_signalled()
    except (StoreError, ApiError, OSError, ConfigError) as exc:
        fail(logs.Redact(token).scrub(str(exc)))
    if fatal:
        click.echo(f"pool-tracker: {logs.Redact(token).scrub(fatal)}", err=True)
        exit_now(2)
    exit_now(0)


@main.command(short_help='Emulated cluster + the daemon tracking it, for a first look.')
@config_option
@click.option("--pools", default=40, show_default=True, type=click.IntRange(min=0), help="Emulated pools.")
@click.option("--speed", default=60.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Simulated seconds per real second (> 0).")
@click.option("--seed", default=1, show_default=True)
@click.option("--db", default="pool-tracker-demo.duckdb", show_default=True, help="DuckDB file for the demo.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--metrics-port", "port", default=9108, show_default=True, help="HTTP port for /healthz, /sql.")
def demo(config_path, pools, speed, seed, db, interval, port):
    """Emulated Qarnot cluster + the daemon tracking it, in one process. Ctrl-C stops."""
    from tracker import logs
    from tracker.config import ConfigError
    from tracker.demo import run_demo
    from tracker.store import StoreError

    config, _ = load(config_path, **{"store.path": db, "poll.interval_seconds": interval, "http.port": port})
    logs.setup(config.log.format, config.log.level, "demo-token")
    try:
        run_demo(config, pools, speed, seed)
    except (StoreError, OSError, ConfigError) as exc:
        fail(str(exc))


@main.group("config")
def config_group():
    """Inspect the configuration."""


@config_group.command("show")
@config_option
def config_show(config_path):
    """Print the effective configuration, token redacted."""
    from tracker.config import describe

    config, _ = load(config_path)
    click.echo(describe(config))


@main.command(short_help='One read-only SQL query over the history.')
@click.argument("query")
@config_option
@db_option
@url_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Most rows to return [sql.default_rows]; a daemon caps it "
              "at its sql.max_rows. A cut result says so on stderr.")
def sql(query, config_path, db, url, fmt, limit):
    """Run one read-only SQL query over the history (views: pool_current, state_intervals, slot_timeline,
    core_timeline, core_seconds_hourly, observation_gaps, pool_history, pool_meta, cost_hourly, carbon_hourly,
    figures_per_slot_hour, price_per_slot_hour; tables: events, polls).

    Read-only by construction: no writes, files, network or settings, a time limit (sql.timeout_seconds).
    The daemon and its admin token are found as the daemon finds them (--config, POOL_TRACKER_* env,
    flags): the token from POOL_TRACKER_ADMIN_TOKEN, http.admin_token_file, or the file the daemon wrote
    beside its database."""
    from tracker.client import DaemonError
    from tracker.sql import render, run_query
    from tracker.store import QueryRefused, StoreError

    config, _ = load(config_path, **{"store.path": db})
    try:
        result = run_query(query, target_for(config, url), limit=limit or config.sql.default_rows,
                           timeout_seconds=config.sql.timeout_seconds)
        click.echo(render(result, fmt).rstrip("\n"))
    except (QueryRefused, StoreError, DaemonError) as exc:
        fail(str(exc))
    if result.truncated:
        click.echo(f"pool-tracker: warning: result cut at {result.limit} rows; raise --limit, or aggregate in SQL",
                   err=True)


@main.command(short_help='The history as Parquet, or into a shared lake (works while the daemon runs).')
@click.option("--parquet", "directory", type=click.Path(file_okay=False),
              callback=lambda ctx, param, value: value and writable_folder(value),
              help="Directory for events/ and polls/, Hive-partitioned by date.")
@click.option("--lake", "lake_url", metavar="URL",
              help="Back-fill a shared Parquet lake (a folder, file:///PATH or s3://BUCKET/PREFIX[?endpoint_override="
                   "HOST:PORT&scheme=http]) with what it lacks: events/ and polls/ partitioned by tracker and date.")
@click.option("--tracker-id", help="This history's name in the lake [lake.tracker_id, else <host>-<database name>].")
@click.option("--batch-rows", type=click.IntRange(1, 10_000_000), default=50_000, show_default=True,
              help="Most rows per lake file (and per request to a running daemon).")
@config_option
@db_option
@url_option
def export(directory, lake_url, tracker_id, batch_rows, config_path, db, url):
    """Export the history as Parquet for Spark, Trino or DuckDB elsewhere: through the running daemon
    (it keeps polling), or from the file when no daemon runs.

    --lake publishes into a shared lake exactly as the daemon's [lake] publisher does (each key once,
    resuming where the lake's files end); do not run it while a daemon publishes the same tracker id.
    """
    from tracker.client import DaemonError
    from tracker.lake import LakeError, default_tracker_id
    from tracker.sql import export as do_export, export_lake
    from tracker.store import QueryRefused, StoreError

    if (directory is None) == (lake_url is None):
        fail("give exactly one of --parquet DIR or --lake URL")
    config, _ = load(config_path, **{"store.path": db, "lake.tracker_id": tracker_id})
    try:
        if lake_url is not None:
            tracker = config.lake.tracker_id or default_tracker_id(config.store.path)
            click.echo(export_lake(target_for(config, url), lake_url, tracker, batch_rows))
        else:
            click.echo(do_export(target_for(config, url), directory))
    except (StoreError, QueryRefused, DaemonError, LakeError) as exc:
        fail(str(exc))


@main.command(short_help='The fleet on one screen (--watch to follow it).')
@config_option
@db_option
@url_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--policy", help="Whose recommendation to show [advisor.commit_policy].")
@click.option("--watch", "-w", is_flag=True, help="Redraw until Ctrl-C.")
@click.option("--every", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between redraws with --watch.")
def pools(config_path, db, url, fmt, policy, watch, every):
    """The fleet on one screen: name, uuid, state, slots (running, min, max), queued or running task
    instances, last change, and the advisor's recommendation (the knobs it would change)."""
    import signal
    import threading

    from tracker.client import DaemonError
    from tracker.fleet import fleet, render_fleet, summary
    from tracker.store import QueryRefused, StoreError

    config, _ = load(config_path, **{"store.path": db})
    target = target_for(config, url)
    policy = policy or config.advisor.commit_policy
    _check_policy(policy)
    stopped = threading.Event()
    if watch:   # Ctrl-C stops it even where the parent left SIGINT ignored (a job started with & in a script),
        def interrupted(signum, frame):    # and even when DuckDB swallows the KeyboardInterrupt mid-query
            stopped.set()
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, interrupted)
    try:
        while True:
            try:
                frame = fleet(target, policy, config.sql.timeout_seconds)
            except (QueryRefused, StoreError, DaemonError, RuntimeError) as exc:
                if stopped.is_set():       # Ctrl-C landed mid-query: DuckDB turns it into "Query interrupted"
                    return
                if isinstance(exc, RuntimeError):
                    raise
                fail(str(exc))
            if watch:
                click.clear()
                click.echo(f"pool-tracker pools, every {every:g} s (Ctrl-C stops); {target.url or target.db}")
            if fmt == "table":
                click.echo(summary(frame))
            click.echo(render_fleet(frame, fmt))
            if not watch or stopped.wait(every):
                return
    except KeyboardInterrupt:
        sys.exit(0)


def _check_policy(policy):
    from policies.registry import POLICIES

    if policy is not None and policy not in POLICIES:
        fail(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")


def pool_uuid(target, given):
    """A pool given by name or uuid, as its uuid; an ambiguous name ends the command listing the matches."""
    from tracker.client import DaemonError
    from tracker.fleet import resolve_pool
    from tracker.store import QueryRefused, StoreError

    if given is None:
        return None
    try:
        return resolve_pool(target, given)
    except (LookupError, QueryRefused, StoreError, DaemonError) as exc:
        fail(str(exc).strip("'\""))


@main.command(short_help='Score settings against real demand (trace or pool).')
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False),
              help="Task arrivals: CSV (submit_time,instances,duration_seconds) or SWF (.swf).")
@click.option("--pool", help="Replay a tracked pool's own history instead (name or uuid): its recorded tasks "
                             "when the [tasks] collector recorded them, else arrivals inferred from its counts.")
@click.option("--arrivals", type=click.Choice(["auto", "tasks", "counts"]), default="auto", show_default=True,
              help="With --pool: replay the recorded tasks (real arrivals and run times), or infer arrivals from "
                   "count changes (as precise as the poll interval); auto: tasks when they cover the history.")
@config_option
@db_option
@url_option
@click.option("--settings", "settings_texts", multiple=True, metavar="K=V,...",
              help="Candidate elastic settings, e.g. max=20,min_idle=1,idle_time=300,factor=0.5,period=90 "
                   "(repeatable; unnamed knobs take the SDK defaults), or a .json file with a scaling document.")
@click.option("--policy", "policies", multiple=True, metavar="NAME|all",
              help="Add a policy's recommendation as a candidate: target-tracking, percentiles, idle-headroom, "
                   "time-of-week, search, or all (repeatable).")
@click.option("--startup-delay", default=60.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a new slot takes to start (>= 0).")
@click.option("--slo", default=300.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="The p95 task wait (seconds, > 0) policies must keep; also the wait counted as too long.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True),
              help="A cap on slot-hours per week the policies must respect (default: none).")
@click.option("--holdout", "holdout_share", type=click.FloatRange(0, 0.9), default=0.25, show_default=True,
              help="Share of the trace (at most its last week) kept aside: policies choose on the older part and "
                   "every candidate is also scored on this held-out window.")
@click.option("--cores-per-slot", type=click.IntRange(min=1), help="Also report core-hours (cores per slot, >= 1).")
@click.option("--price", type=click.FloatRange(min=0), help="Euros per slot-hour, to report euros (--pool: the "
              "price this account paid, when credits have been collected).")
@click.option("--carbon", type=click.FloatRange(min=0), help="gCO2eq per slot-hour, to report grams (--pool: what "
              "this account's carbon facts show).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), callback=lambda ctx, param, value: writable_file(value),
              help="Write demand vs supply to this PNG (its folder must exist).")
@click.option("--frontier-plot", type=click.Path(dir_okay=False), callback=lambda ctx, param, value: writable_file(value),
              help="Write the cost/wait frontier of --policy search (held-out window, with the current and the "
                   "recommended points) to this PNG.")
def backtest(trace_path, pool, arrivals, config_path, db, url, settings_texts, policies, startup_delay, slo, budget,
             holdout_share, cores_per_slot, price, carbon, fmt, plot_path, frontier_plot):
    """Score elastic settings or scaling documents against real demand: cost (slot-hours), waits and
    elasticity metrics, side by side with baselines (static at peak, SDK defaults with max at peak, the
    pool's current), on the whole trace and on its held-out recent window; policies choose out of sample,
    and `search` shows its cost/wait frontier. With --pool, the pool's recorded tasks are replayed when the
    daemon's tasks collector recorded them (else arrivals inferred from count changes); the first output
    line says which (--arrivals chooses)."""
    from policies.settings import InvalidSettings
    from policies.traces import TraceError
    from tracker.backtest_cmd import run_backtest
    from tracker.client import DaemonError
    from tracker.store import QueryRefused, StoreError

    if bool(trace_path) == bool(pool):
        fail("give exactly one of --trace FILE or --pool NAME|UUID")
    target = target_for(load(config_path, **{"store.path": db})[0], url) if pool else None
    pool = pool_uuid(target, pool)
    try:
        click.echo(run_backtest(trace_path=trace_path, pool=pool, target=target,
                                settings_texts=settings_texts, policies=policies, startup_delay=startup_delay, slo=slo,
                                cores_per_slot=cores_per_slot, fmt=fmt, plot_path=plot_path, budget=budget,
                                holdout_share=holdout_share, frontier_plot=frontier_plot, price=price, carbon=carbon,
                                arrivals=arrivals))
    except (TraceError, InvalidSettings, QueryRefused, StoreError, DaemonError) as exc:
        fail(str(exc))


@main.command(short_help='Recommended settings per pool, with reasons and evidence.')
@config_option
@click.option("--pool", help="Only this pool (name or uuid).")
@click.option("--policy", help="Only this policy (target-tracking, percentiles, idle-headroom, time-of-week, search).")
@db_option
@url_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write each pool's cost/wait frontier (held-out window, current and recommended points) to this PNG.")
def recommend(config_path, pool, policy, db, url, fmt, plot_path):
    """Recommended settings (every knob) or weekly scaling documents per pool, with the SLO and budget each
    serves, the reason, the back-test on the held-out recent window, and the search's cost/wait frontier.
    A pool sets its own SLO with the label (or tag NAME=SECONDS) named by advisor.slo_label."""
    from tracker.advice_cmd import recommendations, render_recommendations
    from tracker.client import DaemonError
    from tracker.store import StoreError

    from policies.registry import POLICIES

    config, _ = load(config_path, **{"store.path": db})
    if policy is not None and policy not in POLICIES:
        fail(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    target = target_for(config, url)
    try:
        click.echo(render_recommendations(recommendations(config, target, pool_uuid(target, pool), policy), fmt,
                                          plot_path))
    except (LookupError, StoreError, DaemonError) as exc:
        fail(str(exc))


@main.command("apply", short_help='Commit a recommendation to one pool, behind guardrails.')
@config_option
@click.option("--pool", required=True, help="The pool to commit to (name or uuid).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent, send nothing.")
@db_option
@url_option
def apply_cmd(config_path, pool, dry_run, db, url):
    """Commit the advisor's recommendation for one pool, behind every guardrail (opt-in, improvement,
    limited change, cooldown, live pools only); prints the decision and what was (or would be) sent."""
    import json as jsonlib

    from tracker.advice_cmd import apply_to_pool
    from tracker.client import DaemonError
    from tracker.store import StoreError

    config, token = load(config_path, **{"store.path": db})
    try:
        target = target_for(config, url)
        click.echo(jsonlib.dumps(apply_to_pool(config, token, target, pool_uuid(target, pool), dry_run), indent=1))
    except (LookupError, StoreError, DaemonError) as exc:
        fail(str(exc))
