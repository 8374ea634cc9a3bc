"""Publishing the event log to a shared Parquet lake that Spark, Trino and DuckDB read.

A reader of the log, never a second writer of truth: it reads `events` and `polls` by key range and
writes each range as Parquet under `<table>/tracker=<id>/date=<YYYY-MM-DD>/<id>-<first>-<last>.parquet`
(planning in `tracker.lake_plan`). A final name never holds a partial file, on a local disk or an
object store (pyarrow's file systems: a path, `file://`, `s3://bucket/prefix?endpoint_override=HOST:PORT&scheme=http`, with
credentials from the usual AWS variables and files). Polls are published before events, so the lake
never holds an event whose poll it lacks.
"""
from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tracker import lake_plan
from tracker.lake_plan import Span
from tracker.store import LOG_KEYS, last_key_sql

# One schema per table, whatever the batch holds (an all-null column must not change a file's types).
# Times are naive UTC, as in the database.
SCHEMAS = {
    "events": pa.schema([("seq", pa.int64()), ("poll_id", pa.int64()), ("pool_uuid", pa.string()),
                         ("type", pa.string()), ("occurred_at", pa.timestamp("us")), ("recorded_at", pa.timestamp("us")),
                         ("state_from", pa.string()), ("state_to", pa.string()), ("value_old", pa.float64()),
                         ("value_new", pa.float64()), ("execution_seconds", pa.float64()), ("payload", pa.string())]),
    "polls": pa.schema([("poll_id", pa.int64()), ("started_at", pa.timestamp("us")), ("finished_at", pa.timestamp("us")),
                        ("duration_seconds", pa.float64()), ("outcome", pa.string()), ("message", pa.string()),
                        ("pools_seen", pa.int32()), ("events_written", pa.int32())]),
}
DAYS = {"events": "recorded_at", "polls": "started_at"}   # the column whose UTC date partitions the table
ORDER = ("polls", "events")


class LakeError(Exception):
    """The lake cannot be used; one line naming the lake and the fix (never a credential)."""


class Source(Protocol):
    """Where the log is read: the daemon's own store, or a running daemon's SQL endpoint."""

    def last_keys(self) -> dict[str, int]: ...

    def log_rows(self, table: str, first: int, last: int) -> pa.Table: ...


@dataclass(frozen=True)
class PublishResult:
    rows: dict[str, int] = field(default_factory=dict)        # rows written now, per table
    files: int = 0
    published_through: dict[str, int] = field(default_factory=dict)   # every key up to this is in the lake
    unpublished: dict[str, int] = field(default_factory=dict)  # keys the database has and the lake lacks
    overlaps: int = 0               # files holding a key another file holds (two publishers of one tracker)
    error: str | None = None


def default_tracker_id(db_path: str | Path) -> str:
    return lake_plan.default_tracker_id(socket.gethostname(), Path(db_path).stem)


def check_tracker_id(tracker_id: str) -> str:
    if not lake_plan.TRACKER_ID.match(tracker_id):
        raise LakeError(f"tracker id {tracker_id!r} is not allowed: use {lake_plan.TRACKER_ID_RULE}")
    return tracker_id


def open_lake(url: str) -> tuple[pafs.FileSystem, str]:
    """The file system and root path of a lake URL; a bare path is a local folder."""
    try:
        if "://" not in url:
            return pafs.LocalFileSystem(), str(Path(url).expanduser().absolute())
        filesystem, root = pafs.FileSystem.from_uri(url)
        return filesystem, root.rstrip("/")
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise LakeError(f"cannot open lake {_safe(url)}: {_first_line(exc)}; write a folder path, file:///PATH or "
                        "s3://BUCKET/PREFIX (with ?endpoint_override=HOST:PORT for other S3-compatible stores)") from None


class Publisher:
    """Publishes what the lake lacks of one tracker's log; one publisher per tracker id at a time."""

    def __init__(self, url: str, tracker_id: str, source: Source, *, batch_rows: int = 100_000,
                 opened: tuple[pafs.FileSystem, str] | None = None) -> None:
        """`opened`: the lake as `open_lake(url)` gave it, when the caller checked the URL first."""
        check_tracker_id(tracker_id)
        self.url, self.tracker, self.source, self.batch_rows = url, tracker_id, source, batch_rows
        self.fs, self.root = opened or open_lake(url)
        self._lock = threading.Lock()

    def publish(self, stop: threading.Event | None = None) -> PublishResult:
        """One run; never raises: a failure comes back as `error`, one line, and costs nothing published."""
        with self._lock:
            rows, files, through, unpublished, overlaps = {}, 0, {}, {}, 0
            try:
                last = self.source.last_keys()
                for table in ORDER:
                    covered = self.covered(table)
                    overlaps += len(lake_plan.overlaps(covered))
                    beyond = max((s.last for s in covered), default=0)
                    if beyond > last[table]:
                        raise LakeError(f"the lake holds {table} up to {LOG_KEYS[table]} {beyond} for tracker "
                                        f"{self.tracker!r} but this database ends at {last[table]}: another "
                                        "database publishes under this tracker id; give each its own lake.tracker_id")
                    rows[table] = 0
                    for chunk in lake_plan.chunks(lake_plan.missing(covered, last[table]), self.batch_rows):
                        if stop is not None and stop.is_set():
                            break
                        written, n = self._publish_chunk(table, chunk)
                        covered.extend(written)
                        files, rows[table] = files + len(written), rows[table] + n
                    gaps = lake_plan.missing(covered, last[table])
                    through[table] = gaps[0].first - 1 if gaps else last[table]
                    unpublished[table] = sum(g.size for g in gaps)
            except LakeError as exc:
                return PublishResult(rows, files, through, unpublished, overlaps, str(exc))
            except (OSError, pa.ArrowException) as exc:
                return PublishResult(rows, files, through, unpublished, overlaps,
                                     f"cannot publish to lake {_safe(self.url)}: {_first_line(exc)}; check that it "
                                     "is reachable, writable and not full (the next run resumes where this stopped)")
            except Exception as exc:  # noqa: BLE001 - reading the history failed; the next run resumes
                return PublishResult(rows, files, through, unpublished, overlaps,
                                     f"cannot read the history to publish: {_first_line(exc)} (the next run resumes)")
            return PublishResult(rows, files, through, unpublished, overlaps)

    def covered(self, table: str) -> list[Span]:
        """The ranges this tracker's files hold; leftover temporary files of a crashed run are removed."""
        base = f"{self.root}/{table}/tracker={self.tracker}"
        spans = []
        for info in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            parsed = lake_plan.parse_file_name(info.base_name)
            if parsed is not None and parsed[0] == self.tracker:
                spans.append(parsed[1])
            elif info.base_name.startswith(".") and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)
        return spans

    def _publish_chunk(self, table: str, chunk: Span) -> tuple[list[Span], int]:
        data = _conform(self.source.log_rows(table, chunk.first, chunk.last), SCHEMAS[table])
        keys = data.column(LOG_KEYS[table]).to_pylist()
        days = pc.strftime(data.column(DAYS[table]), format="%Y-%m-%d").to_pylist()
        written = []
        for span, day, start, stop in lake_plan.day_runs(keys, days, chunk):
            folder = f"{self.root}/{lake_plan.partition(table, self.tracker, day)}"
            self._write(data.slice(start, stop - start), folder, lake_plan.file_name(self.tracker, span))
            written.append(span)
        return written, len(keys)

    def _write(self, data: pa.Table, folder: str, name: str) -> None:
        """All or nothing under the final name. On a local disk: written under a hidden temporary name
        (readers skip names starting with a dot), then renamed. On an object store: encoded in memory and
        sent as one upload, which the store makes visible only once complete (a rename there would be a
        copy, and would leave directory markers behind)."""
        if self.fs.type_name != "local":
            encoded = pa.BufferOutputStream()
            pq.write_table(data, encoded, compression="zstd")
            with self.fs.open_output_stream(f"{folder}/{name}") as out:
                out.write(encoded.getvalue())
            return
        self.fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            pq.write_table(data, temporary, filesystem=self.fs, compression="zstd")
            self.fs.move(temporary, f"{folder}/{name}")
        except BaseException:
            try:
                self.fs.delete_file(temporary)
            except (OSError, pa.ArrowException):
                pass          # never written: nothing to remove (a kill leaves it to the next run)
            raise


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table's own columns in the lake's schema (payloads arrive as JSON text)."""
    return pa.table({f.name: data.column(f.name).cast(f.type) for f in schema}, schema=schema)


def _safe(url: str) -> str:
    """A lake URL without its query or any user:password@ part: credentials never reach a message."""
    head = url.split("?", 1)[0]
    scheme, sep, rest = head.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else head


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class DaemonSource:
    """A running daemon's log through its admin SQL endpoint (the daemon holds the database file)."""

    def __init__(self, query: Callable[[str, int], "object"]) -> None:
        self._query = query             # (sql, row limit) -> tracker.store.QueryResult

    def last_keys(self) -> dict[str, int]:
        return {table: int(self._query(last_key_sql(table), 1).rows[0][0]) for table in LOG_KEYS}

    def log_rows(self, table: str, first: int, last: int) -> pa.Table:
        import pandas as pd

        key, schema = LOG_KEYS[table], SCHEMAS[table]
        result = self._query(f"SELECT * FROM {table} WHERE {key} BETWEEN {int(first)} AND {int(last)} ORDER BY {key}",
                             last - first + 1)
        if result.truncated:
            raise LakeError(f"the daemon cut its answer at {result.limit} rows: lower --batch-rows below it")
        frame = pd.DataFrame(result.rows, columns=result.columns)
        columns = {}
        for f in schema:
            values = frame[f.name]
            if pa.types.is_timestamp(f.type):
                values = pd.to_datetime(values, format="ISO8601")
            columns[f.name] = pa.array(values, type=f.type, from_pandas=True)
        return pa.table(columns, schema=schema)
