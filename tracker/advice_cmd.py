"""`pool-tracker recommend` and `apply`: through the running daemon when one answers (it owns the
database), else on the database file directly, as of the history's last successful poll."""
from __future__ import annotations

import json

import httpx
import pandas as pd

from tracker.advisor import Advisor, apply, report
from tracker.api import QarnotClient
from tracker.config import Config
from tracker.poll import utc_now
from tracker.sql import admin_headers, daemon_answer
from tracker.store import Store


def _ask_daemon(url: str | None, admin_token: str, method: str, path: str, **kwargs):
    """The daemon's answer, or None when no daemon listens there."""
    if not url:
        return None
    try:
        answer = httpx.request(method, f"{url.rstrip('/')}{path}", timeout=600, headers=admin_headers(admin_token),
                               **kwargs)
    except httpx.TransportError:
        return None
    return daemon_answer(answer, url)


def recommendations(config: Config, url: str | None, pool: str | None, policy: str | None,
                    admin_token: str = "") -> list[dict]:
    params = {k: v for k, v in (("pool", pool), ("policy", policy)) if v}
    rows = _ask_daemon(url, admin_token, "GET", "/recommendations", params=params)
    if rows is None:
        store = Store(config.store.path, read_only=True, project=True)
        try:
            rows = report(Advisor(store, config.advisor), store.last_observed() or utc_now(), pool, policy)
        finally:
            store.close()
    return rows


def apply_to_pool(config: Config, token: str, url: str | None, pool: str, dry_run: bool, admin_token: str = "") -> dict:
    result = _ask_daemon(url, admin_token, "POST", "/apply", json={"pool": pool, "dry_run": dry_run})
    if result is None:
        store = Store(config.store.path)
        client = QarnotClient(config.api.url, token, timeout=config.api.timeout_seconds)
        try:
            result = apply(Advisor(store, config.advisor, client), pool, store.last_observed() or utc_now(), dry_run)
        finally:
            client.close()
            store.close()
    return result


def render_recommendations(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if not rows:
        return "(no pools)"
    table = pd.DataFrame([{
        "pool": r["name"] or r["pool"][:8], "policy": r["policy"], "code": r["reason_code"],
        "max": (r["settings"] or {}).get("maxTotalSlots"), "min_idle": (r["settings"] or {}).get("minIdleSlots"),
        "idle_s": (r["settings"] or {}).get("minIdleTimeSeconds"),
        "slot_h now->rec": _pair(r, "slot_hours"), "p95_s now->rec": _pair(r, "wait_p95_seconds"),
        "confidence": r["confidence"]} for r in rows])
    reasons = "\n".join(f"  {r['name'] or r['pool']} / {r['policy']}: {r['reason']}" for r in rows)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        return table.to_string(index=False) + "\nwhy:\n" + reasons


def _pair(row: dict, key: str) -> str:
    ev = row["evidence"]
    if "recommended" not in ev:
        return "-"
    return f"{ev.get('current', {}).get(key, '?')} -> {ev['recommended'][key]}"
