"""Store throughput: bulk append rate through `Store.append_poll` against its ceiling, DuckDB inserting
the same rows from ready-made Arrow tables (target: >= 500,000 events/s on 1M events), and the
state-intervals view over 10 million synthetic events (generated inside DuckDB, same schema).

    python benchmarks/bench_store.py [--append 1000000] [--events 10000000]
"""
import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from tracker.events import Event
from tracker.store import Store, _events_table

STATES = ["Submitted", "PartiallyDispatched", "FullyDispatched", "PartiallyExecuting", "FullyExecuting"]


def synthetic_polls(total: int, batch: int, shared_times: bool = True) -> list[list[Event]]:
    """Polls of `batch` events over 5,000 pools. `shared_times`: a poll's events share its time object, as
    `derive_poll` makes them (all recorded at the poll's `now`); else each event has objects of its own."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    polls = []
    for p in range(total // batch):
        at = t0 + timedelta(seconds=p)
        polls.append([Event("queued_changed", f"pool-{i % 5000}", *((at, at) if shared_times else (
                            t0 + timedelta(seconds=p), t0 + timedelta(seconds=p))),
                            value_old=i % 7, value_new=i % 11, execution_seconds=float(i)) for i in range(batch)])
    return polls


def append_rate(path: Path, polls: list[list[Event]]) -> float:
    """Events per second through the store: events table, transaction, projection fold."""
    store = Store(path)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    start = time.perf_counter()
    for events in polls:
        store.append_poll(t0, t0, events, pools_seen=5000)
    elapsed = time.perf_counter() - start
    store.close()
    return sum(map(len, polls)) / elapsed


def insert_ceiling(path: Path, polls: list[list[Event]]) -> float:
    """Events per second DuckDB itself takes the same rows at: one transaction per poll, from Arrow tables
    built beforehand (untimed)."""
    Store(path).close()  # schema
    con = duckdb.connect(str(path))
    tables = [_events_table(events, 1 + p * len(events), p + 1) for p, events in enumerate(polls)]
    start = time.perf_counter()
    for table in tables:
        con.execute("BEGIN")
        con.register("new_events", table)
        con.execute("INSERT INTO events SELECT * FROM new_events")
        con.unregister("new_events")
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return sum(map(len, polls)) / elapsed


def synthesize(path: Path, events: int, pools: int = 20_000) -> None:
    """State changes round-robin over pools, one every ~30 s per pool, straight into the events table."""
    Store(path).close()  # schema and views
    con = duckdb.connect(str(path))
    states = "['" + "','".join(STATES) + "']"
    con.execute(f"""
        INSERT INTO events
        SELECT i + 1, i // 10000 + 1, 'pool-' || (i % {pools}), 'state_changed',
               TIMESTAMP '2026-01-01' + to_seconds((i // {pools}) * 30 + (i % 29)),
               TIMESTAMP '2026-01-01' + to_seconds((i // {pools}) * 30 + 30),
               {states}[((i // {pools}) % 5) + 1], {states}[((i // {pools} + 1) % 5) + 1],
               NULL, NULL, NULL, NULL
        FROM range({events}) t(i)""")
    con.close()


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--append", type=int, default=1_000_000)
    args.add_argument("--events", type=int, default=10_000_000)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        polls = synthetic_polls(opts.append, 100_000)
        ceiling = insert_ceiling(Path(tmp) / "ceiling.duckdb", polls)
        rate = append_rate(Path(tmp) / "append.duckdb", polls)
        own = append_rate(Path(tmp) / "own.duckdb", synthetic_polls(opts.append, 100_000, shared_times=False))
        print(f"ceiling, DuckDB inserting the rows from ready Arrow tables: {ceiling:,.0f} events/s")
        print(f"bulk append: {rate:,.0f} events/s ({opts.append:,} events in polls of 100,000; target >= 500,000), "
              f"{rate / ceiling:.2f} of the ceiling")
        print(f"  the same, each event with time objects of its own: {own:,.0f} events/s, {own / ceiling:.2f} of it")
        path = Path(tmp) / "big.duckdb"
        start = time.perf_counter()
        synthesize(path, opts.events)
        print(f"synthesised {opts.events:,} events in {time.perf_counter() - start:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        start = time.perf_counter()
        Store(path).close()
        print(f"restart: rebuilding the projection from {opts.events:,} events took {time.perf_counter() - start:.1f} s")
        store = Store(path, read_only=True)
        for label, sql in [
            ("count(*) baseline", "SELECT count(*) FROM events"),
            ("time in each state", "SELECT state, sum(seconds) FROM state_intervals GROUP BY state"),
            ("one pool's intervals", "SELECT * FROM state_intervals WHERE pool_uuid = 'pool-42'"),
        ]:
            start = time.perf_counter()
            rows = len(store.frame(sql, limit=10**9))
            print(f"{label:24s} {time.perf_counter() - start:7.3f} s  ({rows} rows)")
        store.close()


if __name__ == "__main__":
    main()
