"""Lake publish throughput: events per second from a DuckDB history into a local Parquet lake (planning,
reading by key range, day partitioning, atomic files), against the floor of pyarrow's plain `write_table`
of the same rows read in one query and written as one file, measured in the same run.

    python benchmarks/bench_publish.py [--events N] [--batch-rows N]
"""
import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracker.events import Event  # noqa: E402
from tracker.lake import Publisher  # noqa: E402
from tracker.store import Store  # noqa: E402


def fill(store: Store, events: int, per_poll: int = 1000) -> None:
    """Polls of `per_poll` cores_changed events, one every 30 s: a few days of a busy account."""
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    for n in range(events // per_poll):
        at = start + timedelta(seconds=30 * n)
        store.append_poll(at, at, [Event("cores_changed", f"pool-{i}", at, at, value_old=i, value_new=i + 1)
                                   for i in range(per_poll)], pools_seen=per_poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "history.duckdb")
        fill(store, args.events)
        total = store.last_keys()["events"]
        began = time.perf_counter()
        pq.write_table(store.log_rows("events", 1, total), f"{tmp}/plain.parquet", compression="zstd")
        floor = time.perf_counter() - began
        began = time.perf_counter()
        result = Publisher(f"{tmp}/lake", "bench", store, batch_rows=args.batch_rows).publish()
        publish = time.perf_counter() - began
        assert result.error is None and result.published_through["events"] == total, result
        began = time.perf_counter()
        again = Publisher(f"{tmp}/lake", "bench", store, batch_rows=args.batch_rows).publish()
        rerun = time.perf_counter() - began
        store.close()
    print(f"events: {total:,}, batch_rows: {args.batch_rows:,}, files written: {result.files}")
    print(f"read all + plain write_table, one file (floor):{total / floor:12,.0f} events/s  ({floor:.2f} s)")
    print(f"lake publish (by range, partitioned, atomic):  {total / publish:12,.0f} events/s  ({publish:.2f} s)"
          f"  = {publish / floor:.2f}x the floor")
    print(f"re-run with nothing missing (list + plan):     {rerun * 1000:12.1f} ms, {again.files} files written")


if __name__ == "__main__":
    main()
