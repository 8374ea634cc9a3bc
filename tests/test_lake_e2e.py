"""The lake end to end: daemons as subprocesses against emulated accounts on 127.0.0.1 publish into one
Parquet lake; a `kill -9` mid-publish and a restart leave every `seq` exactly once; Spark (local mode)
reads the lake of two daemons and finds each daemon's own time-in-state and core-hours per pool."""
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from test_daemon_e2e import ADMIN, TOKEN, DaemonProcess, SteppingClock, free_port
from tracker.emulator import Emulator
from tracker.lake_plan import overlaps, parse_file_name
from tracker.store import Store


@pytest.fixture
def account():
    """An emulated Qarnot account; a second call of the factory gives another, with other pools."""
    clocks, stack = [], []

    def start(seed, pools=15):
        clock = SteppingClock()
        emu = Emulator.running(pools=pools, seed=seed, token=TOKEN, clock=clock)
        stack.append(emu)
        clocks.append(clock)
        return emu.__enter__()

    yield start
    for emu in reversed(stack):
        emu.__exit__(None, None, None)
    for clock in clocks:
        clock.close()


def lake_env(lake, tracker, batch_rows=100_000):
    return {"POOL_TRACKER_LAKE_URL": str(lake), "POOL_TRACKER_LAKE_TRACKER_ID": tracker,
            "POOL_TRACKER_LAKE_INTERVAL_SECONDS": "1", "POOL_TRACKER_LAKE_BATCH_ROWS": str(batch_rows),
            "POOL_TRACKER_ADVISOR_ENABLED": "false"}


def published(daemon, table="events"):
    lake = (daemon.health().json() or {}).get("lake") or {}
    return (lake.get("published_through") or {}).get(table, 0)


def export_lake(*args, **env):
    """`pool-tracker export --lake ...` as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "tracker", "export", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "POOL_TRACKER_ADMIN_TOKEN": ADMIN, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def lake_keys(lake, table, tracker):
    """Every key the lake holds for one tracker, as an analyst's DuckDB reads it (duplicates kept)."""
    return [k for (k,) in duckdb.sql(
        f"SELECT {'seq' if table == 'events' else 'poll_id'} FROM read_parquet('{lake}/{table}/tracker={tracker}/*/*.parquet', "
        "hive_partitioning = true)").fetchall()]


def db_keys(db, table):
    store = Store(db, read_only=True, project=False)
    try:
        return store.last_keys()[table]
    finally:
        store.close()


def test_kill_9_during_publish_then_restart_leaves_every_seq_exactly_once(account, tmp_path):
    emu, lake, db = account(seed=21, pools=40), tmp_path / "lake", tmp_path / "t.duckdb"
    # Three rows per file: a publish of the first polls writes hundreds of files, so the kill lands inside one.
    env = lake_env(lake, "alpha", batch_rows=3)
    daemon = DaemonProcess(emu, db, free_port(), **env)
    daemon.wait_for(lambda: len(list(lake.rglob("*.parquet"))) >= 20, "the first lake files", timeout=60)
    daemon.proc.kill()
    daemon.proc.wait(timeout=10)
    for path in lake.rglob("*.parquet"):             # killed mid-publish: no final name holds a partial file
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()
    before = {p.name for p in lake.rglob("*.parquet")}

    daemon = DaemonProcess(emu, db, free_port(), **env)
    daemon.wait_for(lambda: daemon.polls() >= 2, "polls after the restart", timeout=60)
    target = daemon.sql("SELECT max(seq) FROM events")[0][0]
    daemon.wait_for(lambda: published(daemon) >= target, f"the lake to reach seq {target}", timeout=120)
    code, _ = daemon.terminate()
    assert code == 0 and TOKEN not in daemon.log

    assert before <= {p.name for p in lake.rglob("*.parquet")}   # nothing published before the kill was lost
    assert not list(lake.rglob("*.tmp"))           # the half-written file the kill left (if any) is gone
    for table in ("events", "polls"):
        assert overlaps([parse_file_name(p.name)[1] for p in (lake / table).rglob("*.parquet")]) == []
    export_lake("--lake", str(lake), "--tracker-id", "alpha", "--db", str(db), "--url", "")   # the tail SIGTERM left
    for table in ("events", "polls"):
        keys = lake_keys(lake, table, "alpha")
        assert sorted(keys) == list(range(1, db_keys(db, table) + 1)), f"{table}: each key exactly once"


# -- the contract: Spark reads the lake of two daemons ------------------------------------------------------

TIME_IN_STATE = """
WITH marks AS (
    SELECT tracker, pool_uuid, seq, type, state_to AS state, occurred_at AS start
    FROM events WHERE type IN ('state_changed', 'pool_vanished')
), spans AS (
    SELECT *, lead(start) OVER (PARTITION BY tracker, pool_uuid ORDER BY seq) AS stop FROM marks
)
SELECT tracker, pool_uuid, state,
       sum(unix_micros(CAST(stop AS TIMESTAMP)) - unix_micros(CAST(start AS TIMESTAMP))) / 1e6 AS seconds
FROM spans WHERE type = 'state_changed' AND stop IS NOT NULL
GROUP BY tracker, pool_uuid, state
"""

# Cores from the running-core timeline, a change placed halfway between the poll that saw it and the
# previous successful one, held until the pool vanishes or the last successful poll (as views.sql).
CORE_HOURS = """
WITH ok AS (
    SELECT tracker, poll_id, unix_micros(CAST(finished_at AS TIMESTAMP)) AS done,
           lag(unix_micros(CAST(finished_at AS TIMESTAMP))) OVER (PARTITION BY tracker ORDER BY poll_id) AS previous
    FROM polls WHERE outcome = 'ok'
), steps AS (
    SELECT e.tracker, e.pool_uuid, e.seq,
           CASE WHEN ok.previous IS NULL THEN unix_micros(CAST(e.recorded_at AS TIMESTAMP))
                ELSE ok.previous + (unix_micros(CAST(e.recorded_at AS TIMESTAMP)) - ok.previous) / 2 END AS t,
           CASE WHEN e.type = 'pool_vanished' THEN 0 ELSE e.value_new END AS cores
    FROM events e LEFT JOIN ok ON e.tracker = ok.tracker AND e.poll_id = ok.poll_id
    WHERE e.type IN ('cores_changed', 'pool_vanished')
), spans AS (
    SELECT s.tracker, s.pool_uuid, s.t, s.cores,
           coalesce(lead(s.t) OVER (PARTITION BY s.tracker, s.pool_uuid ORDER BY s.seq), last.done) AS t2
    FROM steps s JOIN (SELECT tracker, max(done) AS done FROM ok GROUP BY tracker) last ON s.tracker = last.tracker
)
SELECT tracker, pool_uuid, sum(cores * (t2 - t)) / 1e6 / 3600 AS core_hours
FROM spans WHERE cores > 0 AND t2 > t GROUP BY tracker, pool_uuid
"""


@pytest.fixture(scope="module")
def spark():
    """One local Spark for the module: its start-up is the slow part."""
    pyspark = pytest.importorskip("pyspark.sql")
    session = (pyspark.SparkSession.builder.master("local[1]").appName("pool-tracker-lake-contract")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1").getOrCreate())
    yield session
    session.stop()


def embedded_views(db):
    """What the daemon's own views say: time in each state and core-hours, per pool."""
    store = Store(db, read_only=True, project=False)
    try:
        states = store.query("SELECT pool_uuid, state, sum(seconds) FROM state_intervals WHERE seconds IS NOT NULL "
                             "GROUP BY ALL", limit=100_000).rows
        cores = store.query("SELECT pool_uuid, sum(core_seconds) / 3600 FROM core_seconds_hourly GROUP BY ALL",
                            limit=100_000).rows
    finally:
        store.close()
    return {(p, s): v for p, s, v in states}, {p: v for p, v in cores}


@pytest.mark.slow
def test_spark_reads_two_daemons_lake_and_finds_each_daemons_own_figures(account, spark, tmp_path):
    lake = tmp_path / "lake"
    alpha_db, beta_db = tmp_path / "alpha.duckdb", tmp_path / "beta.duckdb"
    # alpha publishes by itself; beta has no [lake] and is back-filled through its running daemon.
    alpha = DaemonProcess(account(seed=31), alpha_db, free_port(), **lake_env(lake, "alpha", batch_rows=500))
    beta = DaemonProcess(account(seed=32), beta_db, free_port(), POOL_TRACKER_ADVISOR_ENABLED="false")
    for daemon in (alpha, beta):
        daemon.wait_for(lambda: daemon.polls() >= 12, "a dozen polls (six simulated minutes)", timeout=90)
    alpha.wait_for(lambda: published(alpha) > 0, "alpha's first publish")
    said = export_lake("--lake", str(lake), "--tracker-id", "beta", "--url", beta.url)
    assert "through the daemon" in said
    for daemon in (alpha, beta):
        assert daemon.terminate()[0] == 0
    for tracker, db in (("alpha", alpha_db), ("beta", beta_db)):      # the tails, from the files
        export_lake("--lake", str(lake), "--tracker-id", tracker, "--db", str(db), "--url", "")
        assert sorted(lake_keys(lake, "events", tracker)) == list(range(1, db_keys(db, "events") + 1))

    for table in ("events", "polls"):
        spark.read.option("basePath", f"{lake}/{table}").parquet(f"{lake}/{table}").createOrReplaceTempView(table)
    in_state = {(t, p, s): v for t, p, s, v in spark.sql(TIME_IN_STATE).collect()}
    core_hours = {(t, p): v for t, p, v in spark.sql(CORE_HOURS).collect()}

    for tracker, db in (("alpha", alpha_db), ("beta", beta_db)):
        states, cores = embedded_views(db)
        assert states and any(v > 0 for v in cores.values()), "the accounts did something worth comparing"
        mine = {(p, s): v for (t, p, s), v in in_state.items() if t == tracker}
        assert mine.keys() == states.keys()
        for key, seconds in states.items():
            assert mine[key] == pytest.approx(seconds, abs=0.05), key     # views.sql counts whole milliseconds
        mine = {p: v for (t, p), v in core_hours.items() if t == tracker}
        assert mine.keys() == {p for p, v in cores.items() if v}
        for pool, hours in mine.items():
            assert hours == pytest.approx(cores[pool], rel=1e-6, abs=1e-6), pool
