"""Analysts' SQL: through the running daemon's read-only endpoint, or straight from the file when no
daemon holds it (DuckDB lets only one process open a file while it is being written)."""
from __future__ import annotations

import json

import httpx
import orjson
import pandas as pd

from tracker.store import QueryRefused, Store

FORMATS = ("table", "csv", "json")


def handle_sql_request(store: Store, body: bytes) -> tuple[int, dict]:
    """The daemon's `POST /sql`: `{"query": ...}` -> `{"columns", "rows"}` or 400 `{"error"}`."""
    try:
        query = orjson.loads(body).get("query")
        if not isinstance(query, str):
            raise ValueError
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        return 400, {"error": 'send JSON {"query": "SELECT ..."}'}
    try:
        frame = store.read_only_query(query)
    except QueryRefused as exc:
        return 400, {"error": str(exc)}
    return 200, {"columns": list(frame.columns), "rows": json.loads(frame.to_json(orient="values", date_format="iso"))}


def run_query(query: str, *, url: str | None, db: str) -> pd.DataFrame:
    """Ask the daemon at `url` first; if none answers, open `db` read-only."""
    if url:
        try:
            answer = httpx.post(f"{url.rstrip('/')}/sql", json={"query": query}, timeout=60)
        except httpx.TransportError:
            answer = None
        if answer is not None:
            body = answer.json()
            if answer.status_code != 200:
                raise QueryRefused(body.get("error", f"HTTP {answer.status_code}"))
            return pd.DataFrame(body["rows"], columns=body["columns"])
    store = Store(db, read_only=True)
    try:
        return store.read_only_query(query)
    finally:
        store.close()


def render(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso", lines=False, indent=1)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        return frame.to_string(index=False) if len(frame) else "(no rows)"


def export(db: str, directory: str) -> str:
    store = Store(db, read_only=True)
    try:
        files = store.export_parquet(directory)
    finally:
        store.close()
    return f"wrote {len(files)} Parquet files under {directory} (events/ and polls/, partitioned by date=YYYY-MM-DD)"
