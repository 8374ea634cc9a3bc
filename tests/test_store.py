"""The DuckDB store's contract: atomic polls, contiguous sequence, replay, refusals, bad files."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from tracker.derive import derive_poll
from tracker.events import Event
from tracker.snapshot import PoolSnapshot
from tracker.client import Target
from tracker.sql import export
from tracker.store import QueryRefused, Store, StoreError

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "t.duckdb")
    yield s
    s.close()


def write(store, snaps, at):
    events = derive_poll(store.views, snaps, at)
    store.append_poll(at, at, events, pools_seen=len(snaps))
    return events


def test_a_collector_run_stamped_before_a_poll_is_recorded_at_the_polls_time(store):
    """A collector stamps its events when its run starts; a poll recorded meanwhile must not make
    `recorded_at` go back along `seq` (what a demo re-run at 600x showed)."""
    write(store, [PoolSnapshot("p", "n", "FullyExecuting")], T0 + timedelta(minutes=10))
    store.append_events([Event("credits_checkpointed", "p", T0, T0, value_new=1.5),
                         Event("credits_checkpointed", "p", T0 + timedelta(hours=1), T0 + timedelta(hours=1))])
    rows = store.frame("SELECT type, occurred_at, recorded_at FROM events ORDER BY seq")
    assert rows.recorded_at.is_monotonic_increasing
    assert rows.occurred_at.tolist()[-2] == T0.replace(tzinfo=None)          # when it happened is kept
    assert rows.recorded_at.tolist()[-2:] == [(T0 + timedelta(minutes=10)).replace(tzinfo=None),
                                              (T0 + timedelta(hours=1)).replace(tzinfo=None)]


@pytest.mark.parametrize("sql", ["DELETE FROM events", "INSERT INTO polls VALUES (1)", "DROP TABLE events",
                                 "ATTACH 'x.db'", "COPY events TO 'x.csv'", "INSTALL httpfs", "LOAD httpfs",
                                 "SELECT 1; SELECT 2", "CREATE TABLE x AS SELECT 1", "SET threads = 1"])
def test_writes_and_side_doors_are_refused(store, sql):
    with pytest.raises(QueryRefused):
        store.frame(sql)


def test_bad_sql_names_the_error(store):
    with pytest.raises(QueryRefused, match="SQL error"):
        store.frame("SELECT nonsense FROM nowhere")


def test_garbage_file_gives_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="bad.duckdb") as info:
        Store(bad)
    assert "\n" not in str(info.value)


def test_unwritable_location_gives_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        Store(tmp_path / "file" / "db.duckdb")


def test_another_process_is_told_to_use_sql_while_the_file_is_held(store):
    code = "import sys; from tracker.store import Store\ntry: Store(sys.argv[1], read_only=True)\n" \
           "except Exception as e: print(e)"
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True).stdout
    assert "in use by another process" in out and "pool-tracker sql" in out
    assert f"(PID {os.getpid()})" in out           # who holds it: DuckDB says, and so do we


def test_export_is_hive_partitioned_by_date(store, tmp_path):
    write(store, [PoolSnapshot("a", "n", "Submitted")], T0)
    write(store, [PoolSnapshot("a", "n", "FullyExecuting")], T0 + timedelta(days=1))
    store.close()                                    # `export` reads the file once the daemon has let go
    export(Target(None, store.path), str(tmp_path / "out"))
    files = list((tmp_path / "out").rglob("*.parquet"))
    assert {f.parent.name for f in files if f.parent.parent.name == "events"} == {"date=2026-01-01", "date=2026-01-02"}


def test_history_since_keeps_the_changes_from_then_on(store):
    for day, state in enumerate(["Submitted", "FullyExecuting", "Closing"]):
        write(store, [PoolSnapshot("a", "n", state)], T0 + timedelta(days=day))
    full, recent = store.history("a"), store.history("a", since=T0 + timedelta(days=1))
    assert len(full) == 3 and "pool_uuid" not in recent.columns
    assert recent.equals(full.iloc[1:].reset_index(drop=True))


states = st.sampled_from(["Submitted", "FullyExecuting", "Closing", "Closed"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from("abc"), states, st.integers(0, 5)), max_size=3), min_size=1,
                max_size=8))
def test_replaying_the_log_rebuilds_the_live_projection(tmp_path_factory, polls):
    path = tmp_path_factory.mktemp("replay") / "r.duckdb"
    store = Store(path)
    for i, poll in enumerate(polls):
        snaps = {u: PoolSnapshot(u, u, s, running_instance_count=n) for u, s, n in poll}
        write(store, list(snaps.values()), T0 + timedelta(minutes=i))
    live = dict(store.views)
    store.close()
    reopened = Store(path)
    seqs = reopened.frame("SELECT seq FROM events ORDER BY seq").seq.tolist()
    assert reopened.views == live and seqs == list(range(1, len(seqs) + 1))
    reopened.close()


def test_a_file_written_by_an_older_version_is_read_with_this_versions_views(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    Store(path).close()
    raw = duckdb.connect(str(path))
    raw.execute("DROP VIEW figures_per_slot_hour CASCADE")      # as if written before that view existed
    raw.close()
    reader = Store(path, read_only=True)
    assert reader.unit_figures("Flex") == (None, None) and reader.frame("SELECT * FROM pool_current").empty
    reader.close()
