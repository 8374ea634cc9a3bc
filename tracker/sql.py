"""Analysts' SQL: through the running daemon's admin endpoint, or straight from the file when no
daemon holds it (DuckDB lets only one process open a file while it is being written). Either way the
query runs read-only by construction (see `Store.query`) and the answer says when rows were cut."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pandas as pd

from tracker.client import Target, ask, expect, open_store
from tracker.store import QueryRefused, QueryResult, Store

def handle_sql_request(store: Store, body: bytes, *, default_rows: int, max_rows: int,
                       timeout_seconds: float) -> tuple[int, bytes]:
    """The daemon's `POST /sql`: `{"query": ..., "limit"?: N}` -> `{"columns", "rows", "truncated", "limit"}`;
    `limit` is capped at `max_rows`, and the answer states the limit that applied."""
    try:
        request = orjson.loads(body)
        query, limit = request.get("query"), request.get("limit", default_rows)
        if not isinstance(query, str) or type(limit) is not int or limit < 1:
            raise ValueError
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        return 400, orjson.dumps({"error": 'send JSON {"query": "SELECT ...", "limit": N (optional, >= 1)}'})
    try:
        result = store.query(query, limit=min(limit, max_rows), timeout_seconds=timeout_seconds)
    except QueryRefused as exc:
        return 400, orjson.dumps({"error": str(exc)})
    return 200, encode_result(result)


def encode_result(result: QueryResult) -> bytes:
    return orjson.dumps({"columns": result.columns, "rows": result.rows, "truncated": result.truncated,
                         "limit": result.limit}, default=_json_value, option=orjson.OPT_NON_STR_KEYS)


def _json_value(value):
    """DuckDB values orjson does not know: numbers stay numbers, the rest becomes text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def run_query(query: str, target: Target, *, limit: int = 10_000, timeout_seconds: float = 30.0) -> QueryResult:
    """Ask the daemon at `target.url` first; if none answers, open `target.db` read-only."""
    body, why = ask(target, "POST", "/sql", json={"query": query, "limit": limit}, timeout=timeout_seconds + 30)
    if body is not None:
        body = expect(body, target.url, ("columns", "rows", "truncated", "limit"))
        return QueryResult(body["columns"], [tuple(r) for r in body["rows"]], body["truncated"], body["limit"])
    store = open_store(target, why)
    try:
        return store.query(query, limit=limit, timeout_seconds=timeout_seconds)
    finally:
        store.close()


def as_frame(result: QueryResult) -> pd.DataFrame:
    return pd.DataFrame(result.rows, columns=result.columns)


def render(result: QueryResult, fmt: str) -> str:
    frame = as_frame(result)
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", lines=False, indent=1)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        return frame.to_string(index=False) if len(frame) else "(no rows)"


EXPORTS = (("events", "seq", "recorded_at"), ("polls", "poll_id", "started_at"))   # table, order key, date from
EXPORT_PAGE = 50_000


def export(target: Target, directory: str) -> str:
    """The history as Parquet under `directory`/events and /polls, Hive-partitioned by date: from the file
    when no daemon holds it, else through the running daemon's admin SQL, page by page in `seq` order
    (a reader of the log: the daemon keeps polling, nothing stops)."""
    done = ""
    if target.url is not None:
        probe, why = ask(target, "POST", "/sql", json={"query": "SELECT 1 AS ok", "limit": 1})
        if probe is not None:
            expect(probe, target.url, ("columns", "rows"))
            counts = {table: _export_through_daemon(target, directory, table, key, day)
                      for table, key, day in EXPORTS}
            return (f"wrote {counts['events']} events and {counts['polls']} polls through the daemon at {target.url} "
                    f"as Parquet under {directory} (events/ and polls/, partitioned by date=YYYY-MM-DD)")
        done = why
    store = open_store(target, done, sandboxed=False)   # writing Parquet files is the point here
    try:
        files = store.export_parquet(directory)
    finally:
        store.close()
    return f"wrote {len(files)} Parquet files under {directory} (events/ and polls/, partitioned by date=YYYY-MM-DD)"


def export_lake(target: Target, url: str, tracker_id: str, batch_rows: int = EXPORT_PAGE) -> str:
    """Back-fill a Parquet lake with what it lacks of this history: through the running daemon's admin SQL
    (it keeps polling), or from the file when no daemon runs. Resumes where the lake's files end."""
    from tracker.lake import DaemonSource, LakeError, Publisher, check_tracker_id, open_lake

    opened = open_lake(url)           # a bad URL or tracker id is refused before any history is read
    check_tracker_id(tracker_id)
    store, where = None, f"from {target.db}"
    if target.url is not None:
        probe, why = ask(target, "POST", "/sql", json={"query": "SELECT 1 AS ok", "limit": 1})
        if probe is not None:
            expect(probe, target.url, ("columns", "rows"))
            source, where = DaemonSource(lambda sql, limit: run_query(sql, target, limit=limit)), \
                f"through the daemon at {target.url}"
        else:
            store = source = open_store(target, why)
    else:
        store = source = open_store(target, "")
    try:
        result = Publisher(url, tracker_id, source, batch_rows=batch_rows, opened=opened).publish()
    finally:
        if store is not None:
            store.close()
    if result.error:
        raise LakeError(result.error)
    rows = ", ".join(f"{n} {table}" for table, n in result.rows.items())
    return (f"published {rows} ({result.files} files) {where} to {url.split('?', 1)[0]} as tracker {tracker_id}; "
            f"the lake now holds events up to seq {result.published_through.get('events', 0)}"
            + (f" (warning: {result.overlaps} overlapping files: another publisher uses this tracker id)"
               if result.overlaps else ""))


def _export_through_daemon(target: Target, directory: str, table: str, key: str, day: str) -> int:
    types = dict(run_query(f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
                           f"'{table}' ORDER BY ordinal_position", target, limit=1000).rows)
    last, page, total = None, 0, 0
    while True:
        where = "" if last is None else f" WHERE {key} > {int(last)}"
        result = run_query(f"SELECT * FROM {table}{where} ORDER BY {key} LIMIT {EXPORT_PAGE}", target,
                           limit=EXPORT_PAGE)
        if not result.rows:
            return total
        frame = _typed(as_frame(result), types)
        frame["date"] = frame[day].dt.strftime("%Y-%m-%d")
        frame.to_parquet(f"{directory}/{table}", partition_cols=["date"], index=False,
                         basename_template=f"daemon-{page:05d}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore")
        last, page, total = frame[key].iloc[-1], page + 1, total + len(frame)


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """JSON values back to the table's column types (timestamps arrive as text)."""
    for column, kind in types.items():
        if column not in frame:
            continue
        if kind.startswith("TIMESTAMP"):
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        elif kind in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"):
            frame[column] = frame[column].astype("Int64" if kind != "INTEGER" else "Int32")
        elif kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL"):
            frame[column] = frame[column].astype("float64")
        elif kind == "BOOLEAN":
            frame[column] = frame[column].astype("boolean")
        else:
            frame[column] = frame[column].astype("string")
    return frame
