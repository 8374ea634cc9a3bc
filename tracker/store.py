"""The DuckDB event store: append-only events, poll coverage, analyst views. The only duckdb user.

One transaction per poll, so a crash keeps all of a poll or none of it. The sequence is global and
contiguous. On open, the schema is migrated and every pool's current view is rebuilt by folding the
log, so a restart writes no spurious events. All times are UTC (naive TIMESTAMP columns).
"""
from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracker.events import Event, PoolView, apply, folded

SCHEMA_VERSION = 1
PY_MAX_TIME = "9999-12-31 23:59:59"   # the latest timestamp Python's datetime can hold
EVENT_COLUMNS = ("seq", "poll_id", "pool_uuid", "type", "occurred_at", "recorded_at", "state_from", "state_to",
                 "value_old", "value_new", "execution_seconds", "payload")
ALLOWED_STATEMENTS = {"SELECT", "EXPLAIN"}
LOG_KEYS = {"events": "seq", "polls": "poll_id"}   # the append-only tables and the key that orders them
VIEWS_SQL = (Path(__file__).with_name("views.sql")).read_text()

MIGRATIONS = {
    1: """
    CREATE TABLE polls (poll_id BIGINT, started_at TIMESTAMP, finished_at TIMESTAMP, duration_seconds DOUBLE,
                        outcome VARCHAR, message VARCHAR, pools_seen INTEGER, events_written INTEGER);
    CREATE TABLE events (seq BIGINT, poll_id BIGINT, pool_uuid VARCHAR, type VARCHAR, occurred_at TIMESTAMP,
                         recorded_at TIMESTAMP, state_from VARCHAR, state_to VARCHAR, value_old DOUBLE,
                         value_new DOUBLE, execution_seconds DOUBLE, payload JSON);
    """,
}


class StoreError(Exception):
    """The database file cannot be used; the message names the path and the fix."""


class StoreGone(Exception):
    """The database file was deleted or replaced under the running daemon: not a write to retry (so not a
    StoreError), a reason to stop."""


class QueryRefused(ValueError):
    """An analyst query that is refused, failed or ran out of time; the message says which and why."""


# Whatever runs on this database can touch no file, no network and no setting: analyst SQL shares the
# daemon's database, so the database itself is locked down (the writer needs none of these).
SANDBOX = {"enable_external_access": False, "autoinstall_known_extensions": False,
           "autoload_known_extensions": False}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool      # more rows existed than `limit`
    limit: int


def _utc_naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None)


def _utc_aware(value: datetime | None) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise ValueError(f"not a timestamp Python can hold: {value!r}")
    return None if value is None else value.replace(tzinfo=timezone.utc)


class Store:
    """Owns the DuckDB file for the daemon's whole life (DuckDB allows one writing process)."""

    def __init__(self, path: str | Path, *, read_only: bool = False, project: bool | None = None,
                 sandboxed: bool = True, memory_limit: str = "1GB", threads: int = 2) -> None:
        """`sandboxed` (the default) locks the database down for analyst SQL; only `export` needs it off."""
        self.path = Path(path)
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path), read_only=read_only, config=SANDBOX if sandboxed else {})
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                holder = re.search(r"\(PID \d+\)", str(exc))
                raise StoreError(f"{self.path} is in use by another process{' ' + holder.group(0) if holder else ''}"
                                 " (a running daemon?): go through it (`pool-tracker sql --url URL` or its "
                                 "--config), or stop it first") from None
            raise StoreError(f"cannot open {self.path}: {_first_line(exc)}; check the path and permissions") from None
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot open {self.path}: {_first_line(exc)}; is it a DuckDB file? "
                             "Move it aside or point --db elsewhere") from None
        self._lock = threading.Lock()
        self.read_only = read_only
        if not read_only:
            self._migrate()
        else:   # this version's views, over a file an older version may have written: temporary, so nothing is written
            self._con.execute(VIEWS_SQL.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW"))
        if sandboxed:
            self._con.execute(f"SET memory_limit = '{_setting(memory_limit)}'")
            self._con.execute(f"SET threads = {int(threads)}")
            self._con.execute("SET lock_configuration = true")
        self._identity = _file_identity(self.path)
        # Writers (the daemon) and the advisor need the projection; plain SQL readers do not.
        project = not read_only if project is None else project
        self.replay_skipped = 0
        self.views: dict[str, PoolView] = self._replay() if project else {}
        self._next_seq = self._scalar("SELECT coalesce(max(seq), 0) + 1 FROM events")
        self._next_poll = self._scalar("SELECT coalesce(max(poll_id), 0) + 1 FROM polls")
        # The latest time the history speaks of: a clock behind it would write time backwards.
        self.last_recorded: datetime | None = _utc_aware(self._scalar(   # (rows past Python's year 9999 ignored)
            f"SELECT greatest((SELECT max(finished_at) FROM polls WHERE finished_at < '{PY_MAX_TIME}'), "
            f"(SELECT max(recorded_at) FROM events WHERE recorded_at < '{PY_MAX_TIME}'))"))

    # -- schema -----------------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
        current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema v{current}, newer than this pool-tracker (v{SCHEMA_VERSION}):"
                             " upgrade pool-tracker")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            con.execute("BEGIN")
            con.execute(MIGRATIONS[version])
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
            con.execute("COMMIT")
        con.execute(VIEWS_SQL)

    def _scalar(self, sql: str):
        return self._con.execute(sql).fetchone()[0]

    # -- writing ----------------------------------------------------------------------------------
    def append_poll(self, started_at: datetime, finished_at: datetime, events: list[Event], *,
                    outcome: str = "ok", message: str = "", pools_seen: int = 0) -> int:
        """Write one poll's coverage row and its events atomically; returns the poll id."""
        with self._lock:
            poll_id = self._next_poll
            self._write(events, poll_id, [poll_id, _utc_naive(started_at), _utc_naive(finished_at),
                                          (finished_at - started_at).total_seconds(), outcome, message,
                                          pools_seen, len(events)])
            self._next_poll = poll_id + 1
            return poll_id

    def append_events(self, events: list[Event]) -> None:
        """Events that no poll observed (the advisor's decisions, the collectors' figures and tasks), in one
        transaction. A run stamps its events when it starts; a poll may have been recorded since: such
        events are recorded at the log's last time, so `recorded_at` never goes back along `seq`."""
        if events:
            with self._lock:
                last = self.last_recorded
                if last is not None:
                    events = [e if e.recorded_at >= last else replace(e, recorded_at=last) for e in events]
                self._write(events, None, None)

    def _write(self, events: list[Event], poll_id: int | None, poll_row: list | None) -> None:
        """One transaction; any failure rolls it back and raises the database's own reason, so a full disk
        reads as "No space left on device", not as the rollback's complaint."""
        self.check_identity()
        first, table = self._next_seq, None
        try:
            self._con.execute("BEGIN")
            if poll_row is not None:
                self._con.execute("INSERT INTO polls VALUES (?, ?, ?, ?, ?, ?, ?, ?)", poll_row)
            if events:
                table = _events_table(events, first, poll_id)
                self._con.register("new_events", table)
                self._con.execute("INSERT INTO events SELECT * FROM new_events")
                self._con.unregister("new_events")
            self._con.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - whatever failed (DuckDB, Arrow), the transaction must end
            try:
                self._con.execute("ROLLBACK")
            except duckdb.Error:
                pass                      # a failed COMMIT has already ended it
            raise StoreError(f"could not write to {self.path}: {_first_line(exc)}; "
                             "check free disk space and permissions (polls resume by themselves)") from None
        self._next_seq = first + len(events)
        latest_event = None if table is None else _utc_aware(pc.max(table["recorded_at"]).as_py())
        times = (self.last_recorded, latest_event, _utc_aware(poll_row[2]) if poll_row else None)
        self.last_recorded = max([t for t in times if t is not None], default=None)
        for uuid, view in folded(self.views, events).items():
            self._put(uuid, view)

    def check_identity(self) -> None:
        """Writes into a deleted or replaced file would vanish at exit; stop instead of losing them."""
        if self.read_only:
            return
        now = _file_identity(self.path)
        if now != self._identity:
            raise StoreGone(f"{self.path} was {'deleted' if now is None else 'replaced'} while the daemon had it "
                            "open; the history since then cannot be kept. Restore the file or start afresh")

    def last_observed(self) -> datetime | None:
        """When the last successful poll observed the pools: "now", as far as the history knows."""
        with self._reader() as cursor:
            return _utc_aware(cursor.execute("SELECT max(finished_at) FROM polls WHERE outcome = 'ok'").fetchone()[0])

    def last_event_time(self, pool_uuid: str, event_type: str) -> datetime | None:
        with self._reader() as cursor:
            return _utc_aware(cursor.execute("SELECT max(recorded_at) FROM events WHERE pool_uuid = ? AND type = ?",
                                             [pool_uuid, event_type]).fetchone()[0])

    def last_times(self, types: tuple[str, ...]) -> dict[str, datetime]:
        """Each pool's latest event of these types: where a collector left off before a restart."""
        with self._reader() as cursor:
            rows = cursor.execute("SELECT pool_uuid, max(recorded_at) FROM events WHERE type IN (SELECT unnest(?)) "
                                  "AND pool_uuid IS NOT NULL GROUP BY pool_uuid", [list(types)]).fetchall()
        return {uuid: _utc_aware(at) for uuid, at in rows}

    def task_phases(self, uuids: list[str] | None = None) -> dict[str, tuple[str, str, datetime]]:
        """task uuid -> (pool, latest task event type, when recorded), for these tasks or, with None, for every
        task not finished yet: where the tasks collector left off (see tracker.tasks)."""
        where = "payload->>'$.task' IN (SELECT unnest(?))" if uuids is not None else "TRUE"
        with self._reader() as cursor:
            rows = cursor.execute(f"""
                SELECT payload->>'$.task', arg_max(pool_uuid, seq), arg_max(type, seq), max(recorded_at)
                FROM events WHERE type IN ('task_submitted', 'task_started', 'task_finished') AND {where}
                GROUP BY 1 {'' if uuids is not None else "HAVING arg_max(type, seq) <> 'task_finished'"}""",
                                  [list(uuids)] if uuids is not None else []).fetchall()
        return {task: (pool, kind, _utc_aware(at)) for task, pool, kind, at in rows}

    def unit_figures(self, scheduling_type: str | None) -> tuple[float | None, float | None]:
        """(euros, gCO2eq) per running slot-hour observed on this account for a scheduling type."""
        with self._reader() as cursor:
            row = cursor.execute("SELECT euros_per_slot_hour, gco2eq_per_slot_hour FROM figures_per_slot_hour "
                                 "WHERE scheduling_type = coalesce(?, 'unknown')", [scheduling_type]).fetchone()
        return row if row is not None else (None, None)

    def latest_account(self) -> dict:
        """The latest value of each account-wide figure (`account_observed` events)."""
        with self._reader() as cursor:
            rows = cursor.execute("SELECT payload->>'$.what', arg_max(payload->'$.value', seq)::VARCHAR FROM events "
                                  "WHERE type = 'account_observed' GROUP BY ALL").fetchall()
        return {what: json.loads(value) for what, value in rows}

    def _put(self, uuid: str, view: PoolView | None) -> None:
        if view is None:
            self.views.pop(uuid, None)
        else:
            self.views[uuid] = view

    def _replay(self) -> dict[str, PoolView]:
        """Fold the log with the same function the live path uses, so both agree by construction.

        Every field of a view is last-writer-wins per event type, and a vanished pool restarts from
        defaults, so folding only each pool's latest event of each type gives the same views as folding
        everything (the replay property test holds both to it) in a fraction of the time.
        """
        self.views = {}
        # Times past Python's datetime (an older, laxer version could record them) are left out, so the
        # latest readable event of that type counts instead.
        readable = " AND ".join(f"coalesce({c}, TIMESTAMP '2000-01-01') < '{PY_MAX_TIME}'"
                                for c in ("occurred_at", "recorded_at"))
        self.replay_skipped = self._scalar(f"SELECT count(*) FROM events WHERE NOT ({readable})")
        cursor = self._con.execute(f"""
            SELECT * FROM events WHERE pool_uuid IS NOT NULL AND {readable}
            QUALIFY row_number() OVER (PARTITION BY pool_uuid, type ORDER BY seq DESC) = 1
            ORDER BY seq""")
        while batch := cursor.fetchmany(50_000):
            for row in batch:
                try:
                    event = _row_event(row)
                    self._put(event.pool_uuid, apply(self.views.get(event.pool_uuid), event))
                except (TypeError, ValueError, KeyError, AttributeError):
                    self.replay_skipped += 1    # a row an older, laxer version wrote: the rest still counts
        return self.views

    # -- reading ----------------------------------------------------------------------------------
    @contextmanager
    def _reader(self):
        """A connection of its own beside the writing poller. A read-only store reads on its one connection,
        where this version's (temporary) views live: temporary views belong to the connection that made them."""
        if self.read_only:
            yield self._con
        else:
            with self._con.cursor() as cursor:
                yield cursor

    def query(self, sql: str, *, limit: int = 10_000, timeout_seconds: float = 30.0) -> QueryResult:
        """One analyst query, read-only by construction: a read-only transaction on its own connection,
        always rolled back, interrupted at `timeout_seconds`, at most `limit` rows fetched (streamed)."""
        _check_single_read(sql)
        with self._reader() as cursor:
            timer = threading.Timer(timeout_seconds, cursor.interrupt)
            timer.daemon = True          # never holds up the process's exit (Ctrl-C mid-query)
            try:
                timer.start()
                cursor.execute("BEGIN TRANSACTION READ ONLY")
                cursor.execute(sql)
                columns = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchmany(limit + 1) if columns else []
            except duckdb.InterruptException:
                raise QueryRefused(f"query stopped at its time limit ({timeout_seconds:g} s): narrow it with WHERE "
                                   "or LIMIT, or raise sql.timeout_seconds") from None
            except duckdb.Error as exc:
                raise QueryRefused(f"SQL error: {_first_line(exc)}") from None
            finally:
                timer.cancel()
                try:
                    cursor.execute("ROLLBACK")
                except duckdb.Error:
                    pass
        return QueryResult(columns, rows[:limit], len(rows) > limit, limit)

    def frame(self, sql: str, limit: int = 1_000_000) -> pd.DataFrame:
        """A read-only query as a DataFrame, for code and tests that want one."""
        result = self.query(sql, limit=limit)
        return pd.DataFrame(result.rows, columns=result.columns)

    def history(self, pool_uuid: str, since: datetime | None = None) -> pd.DataFrame:
        """A pool's step-function history, one row per change, for policies and back-testing."""
        with self._reader() as cursor:   # the window is cut in SQL: a year of history is not loaded for a week
            return cursor.execute('SELECT * EXCLUDE (pool_uuid) FROM pool_history WHERE pool_uuid = ? '
                                  'AND "at" >= coalesce(?::TIMESTAMP, "at") ORDER BY "at"',
                                  [pool_uuid, _utc_naive(since)]).fetch_df()

    def polls(self) -> pd.DataFrame:
        with self._reader() as cursor:
            return cursor.execute("SELECT * FROM polls ORDER BY poll_id").fetch_df()

    def log_rows(self, table: str, first: int, last: int) -> pa.Table:
        """Rows of `events` or `polls` whose key is in [first, last], in key order: what the lake publisher
        reads, on its own connection (a reader of the log, never a writer)."""
        key = LOG_KEYS[table]
        with self._reader() as cursor:
            return cursor.sql(f"SELECT * FROM {table} WHERE {key} BETWEEN $1 AND $2 ORDER BY {key}",
                              params=[int(first), int(last)]).to_arrow_table()

    def last_keys(self) -> dict[str, int]:
        """The highest key of each log table (0 when empty). Events are read first: every event counted
        then belongs to a poll already committed, so a publisher that ships polls up to the second figure
        never ships an event whose poll it lacks."""
        with self._reader() as cursor:
            return {table: cursor.execute(last_key_sql(table)).fetchall()[0][0] for table in LOG_KEYS}

    def export_parquet(self, directory: str | Path) -> list[Path]:
        """Events and polls as Parquet, Hive-partitioned by date, for engines on other machines
        (on a store opened with `sandboxed=False`: a sandboxed database writes no files)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        with self._reader() as cursor:
            for table, column in (("events", "recorded_at"), ("polls", "started_at")):
                target = str(out / table).replace("'", "''")
                cursor.execute(f"COPY (SELECT *, CAST({column} AS DATE) AS date FROM {table}) TO '{target}' "
                               "(FORMAT PARQUET, PARTITION_BY (date), OVERWRITE_OR_IGNORE)")
        return sorted(out.rglob("*.parquet"))

    def size_bytes(self) -> int:
        """The file plus its write-ahead log (recent polls live there until a checkpoint)."""
        paths = (self.path, self.path.with_name(self.path.name + ".wal"))
        return sum(p.stat().st_size for p in paths if p.exists())

    def close(self) -> None:
        with self._lock:
            self._con.close()


def last_key_sql(table: str) -> str:
    """The highest key of a log table, 0 when it is empty (for this store and for a daemon's /sql alike)."""
    return f"SELECT coalesce(max({LOG_KEYS[table]}), 0) FROM {table}"


def _events_table(events: list[Event], first_seq: int, poll_id: int | None) -> pa.Table:
    n = len(events)
    return pa.table({
        "seq": pa.array(np.arange(first_seq, first_seq + n, dtype=np.int64)),
        "poll_id": pa.nulls(n, pa.int64()) if poll_id is None else pa.repeat(pa.scalar(poll_id, pa.int64()), n),
        "pool_uuid": [e.pool_uuid for e in events],
        "type": [e.type for e in events],
        "occurred_at": _naive_utc_array([e.occurred_at for e in events]),
        "recorded_at": _naive_utc_array([e.recorded_at for e in events]),
        "state_from": pa.array([e.state_from for e in events], pa.string()),
        "state_to": pa.array([e.state_to for e in events], pa.string()),
        "value_old": pa.array([e.value_old for e in events], pa.float64()),
        "value_new": pa.array([e.value_new for e in events], pa.float64()),
        "execution_seconds": pa.array([e.execution_seconds for e in events], pa.float64()),
        "payload": pa.array([None if e.payload is None else json.dumps(e.payload) for e in events], pa.string()),
    })


def _naive_utc_array(values: list[datetime]) -> pa.Array:
    """Aware datetimes -> naive UTC timestamps, converted in Arrow (300 ns each). A poll's events share a few
    time objects (its `now` above all): one instant for all is converted once and repeated; else each distinct
    object is converted once and spread by index."""
    if values and values.count(values[0]) == len(values):     # (list.count compares in C: 1 ms for 100,000)
        return pa.repeat(_to_naive_utc(values[:1])[0], len(values))
    by_id = dict(zip(map(id, values), values))
    if 2 * len(by_id) > len(values):    # mostly distinct objects: spreading them would not pay
        return _to_naive_utc(values)
    position = {key: i for i, key in enumerate(by_id)}
    spread = pa.array(list(map(position.__getitem__, map(id, values))), pa.int32())
    return _to_naive_utc(list(by_id.values())).take(spread)


def _to_naive_utc(values: list) -> pa.Array:
    return pa.array(values, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))


def _row_event(row: tuple) -> Event:
    (_, _, pool, kind, occurred, recorded, s_from, s_to, v_old, v_new, exec_s, payload) = row
    return Event(kind, pool, _utc_aware(occurred), _utc_aware(recorded), s_from, s_to, v_old, v_new, exec_s,
                 None if payload is None else json.loads(payload))


def _check_single_read(sql: str) -> None:
    """Refuse early, with a clear word, what the read-only transaction would refuse anyway."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"SQL error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement (got {len(statements)})")
    kind = statements[0].type.name
    if kind not in ALLOWED_STATEMENTS:
        raise QueryRefused(f"{kind} statements are refused: this path is read-only (SELECT and EXPLAIN only)")


def _setting(value: str) -> str:
    if not all(c.isalnum() or c in ". " for c in value):
        raise StoreError(f"memory limit {value!r} is not a size like '1GB'")
    return value


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
