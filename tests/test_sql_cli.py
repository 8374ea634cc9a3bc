"""`pool-tracker sql` and `export` on a DuckDB file, as an analyst runs them."""
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from tracker.derive import derive_poll
from tracker.snapshot import PoolSnapshot
from tracker.store import Store

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "h.duckdb"
    store = Store(path)
    snaps = [PoolSnapshot("p1", "render", "FullyExecuting", running_core_count=8),
             PoolSnapshot("p2", "train", "Failure", errors=("boom",))]
    store.append_poll(T0, T0, derive_poll({}, snaps, T0), pools_seen=2)
    store.close()
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tracker", *args], capture_output=True, text=True, timeout=60)


def test_sql_reads_the_file_when_no_daemon_answers(db):
    out = cli("sql", "SELECT name, state, running_cores FROM pool_current ORDER BY name", "--db", str(db),
              "--url", "http://127.0.0.1:9", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"name": "render", "state": "FullyExecuting", "running_cores": 8},
                                      {"name": "train", "state": "Failure", "running_cores": 0}]
    csv = cli("sql", "SELECT name FROM pool_current ORDER BY name", "--db", str(db), "--url", "", "--format", "csv")
    assert csv.stdout.splitlines() == ["name", "render", "train"]


@pytest.mark.parametrize("query", ["DELETE FROM events", "SELECT * FROM nowhere"])
def test_refused_or_bad_queries_are_one_line_errors(db, query):
    out = cli("sql", query, "--db", str(db), "--url", "")
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_export_writes_partitioned_parquet_readable_elsewhere(db, tmp_path):
    out = cli("export", "--parquet", str(tmp_path / "pq"), "--db", str(db))
    assert out.returncode == 0, out.stderr
    import duckdb
    rows = duckdb.sql(f"SELECT count(*), min(date) FROM read_parquet('{tmp_path}/pq/events/*/*.parquet', "
                      "hive_partitioning = true)").fetchall()[0]
    assert rows[0] > 0 and str(rows[1]) == "2026-03-01"


def test_export_works_while_the_daemon_runs_and_matches_the_file_export(db, tmp_path):
    """Through the daemon's admin SQL, page by page: no downtime, the same rows and types as from the file."""
    import shutil
    import socket

    import duckdb

    from tracker.config import load_config
    from tracker.daemon import Daemon

    from_file = cli("export", "--parquet", str(tmp_path / "file"), "--db", str(db), "--url", "")
    assert from_file.returncode == 0, from_file.stderr
    held = tmp_path / "held.duckdb"
    shutil.copy(db, held)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "c.toml").write_text(f"[store]\npath = '{held}'\n[http]\nport = {port}\n")
    daemon = Daemon(load_config(tmp_path / "c.toml", env={})[0], "test-token-1")
    daemon.web.start()
    try:
        out = cli("export", "--parquet", str(tmp_path / "live"), "--config", str(tmp_path / "c.toml"))
    finally:
        daemon.web.stop()
        daemon.store.close()
    assert out.returncode == 0 and "through the daemon" in out.stdout, out.stderr
    for table in ("events", "polls"):
        read = "SELECT * FROM read_parquet('{}/{}/*/*.parquet', hive_partitioning = true) ORDER BY ALL"
        assert duckdb.sql(read.format(tmp_path / "live", table)).fetchall() == \
            duckdb.sql(read.format(tmp_path / "file", table)).fetchall()
