"""`pool-tracker recommend` and `apply`: through the running daemon when one answers (it owns the
database), else on the database file directly, as of the history's last successful poll."""
from __future__ import annotations

import json

import pandas as pd

from tracker.advisor import Advisor, apply, report
from tracker.api import QarnotClient
from tracker.config import Config
from tracker.poll import utc_now
from tracker.client import Target, ask, expect, open_store


def recommendations(config: Config, target: Target, pool: str | None, policy: str | None) -> list[dict]:
    params = {k: v for k, v in (("pool", pool), ("policy", policy)) if v}
    rows, why = ask(target, "GET", "/recommendations", params=params)
    if rows is not None:
        return expect(rows, target.url, kind=list)
    store = open_store(target, why, project=True)
    try:
        return report(Advisor(store, config.advisor), store.last_observed() or utc_now(), pool, policy)
    finally:
        store.close()


def apply_to_pool(config: Config, token: str, target: Target, pool: str, dry_run: bool) -> dict:
    result, why = ask(target, "POST", "/apply", json={"pool": pool, "dry_run": dry_run})
    if result is not None:
        return expect(result, target.url, ("allowed",))
    store = open_store(target, why, read_only=False)
    client = QarnotClient(config.api.url, token, timeout=config.api.timeout_seconds)
    try:
        return apply(Advisor(store, config.advisor, client), pool, store.last_observed() or utc_now(), dry_run)
    finally:
        client.close()
        store.close()


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
