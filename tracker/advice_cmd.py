"""`pool-tracker recommend` and `apply`: through the running daemon when one answers (it owns the
database), else on the database file directly, as of the history's last successful poll."""
from __future__ import annotations

import json

import httpx
import pandas as pd

from policies.frontier import describe
from policies.settings import ElasticSettings
from tracker.advisor import Advisor, apply, report
from tracker.api import QarnotClient
from tracker.config import Config
from tracker.frontier_view import frontier_table, plot_frontier
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
        from tracker.backtest_cmd import Progress

        store = Store(config.store.path, read_only=True, project=True)
        bar = Progress(True)
        try:
            rows = report(Advisor(store, config.advisor), store.last_observed() or utc_now(), pool, policy, bar)
        finally:
            bar.close()
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


def render_recommendations(rows: list[dict], fmt: str, plot_path: str | None = None) -> str:
    if plot_path and rows:
        plot_frontier([(f"{r['name'] or r['pool'][:8]} / {r['policy']}", r["evidence"]) for r in rows], plot_path)
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if not rows:
        return "(no pools)"
    table = pd.DataFrame([{
        "pool": r["name"] or r["pool"][:8], "policy": r["policy"], "code": r["reason_code"],
        "slo_s": _objective(r, "slo_seconds"), "budget_h/wk": _objective(r, "budget_slot_hours_per_week"),
        "kind": r.get("kind", "elastic"),
        "slot_h now->rec": _pair(r, "slot_hours"), "p95_s now->rec": _pair(r, "wait_p95_seconds"),
        "scored on": _window(r), "confidence": r["confidence"]} for r in rows])
    lines = []
    with pd.option_context("display.width", 250, "display.max_columns", None):
        lines.append(table.to_string(index=False))
    lines.append("settings (every knob, or the scaling document):")
    lines += [f"  {r['name'] or r['pool']} / {r['policy']}: now {describe_payload(r.get('current'))}; "
              f"recommended {r.get('described', '-')}" for r in rows]
    lines.append("why:")
    lines += [f"  {r['name'] or r['pool']} / {r['policy']}: {r['reason']}" for r in rows]
    for r in rows:
        if r["evidence"].get("frontier"):
            lines += [f"cost/wait frontier of {r['name'] or r['pool']} / {r['policy']} (* = chosen, off the frontier):",
                      frontier_table(r["evidence"])]
    return "\n".join(lines)


def describe_payload(body: dict | None) -> str:
    return "-" if not body else describe(ElasticSettings.from_api(body))


def _objective(row: dict, key: str):
    value = row["evidence"].get("objective", {}).get(key)
    return "-" if value is None else round(value)


def _window(row: dict) -> str:
    w = row["evidence"].get("window")
    return "-" if not w else f"{w['kind']} {w['hours']:.0f} h"


def _pair(row: dict, key: str) -> str:
    ev = row["evidence"]
    if "recommended" not in ev:
        return "-"
    return f"{ev.get('current', {}).get(key, '?')} -> {ev['recommended'][key]}"
