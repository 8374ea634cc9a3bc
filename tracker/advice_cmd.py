"""`pool-tracker recommend` and `apply`: through the running daemon when one answers (it owns the
database), else on the database file directly, as of the history's last successful poll."""
from __future__ import annotations

import json

import pandas as pd

from policies.frontier import describe
from policies.scaling import Scaling
from policies.settings import ElasticSettings
from tracker.advisor import Advisor, apply, report
from tracker.api import QarnotClient
from tracker.config import Config
from tracker.frontier_view import frontier_table, plot_frontier
from tracker.poll import utc_now
from tracker.client import Target, ask, expect, open_store


def recommendations(config: Config, target: Target, pool: str | None, policy: str | None) -> list[dict]:
    params = {k: v for k, v in (("pool", pool), ("policy", policy)) if v}
    rows, why = ask(target, "GET", "/recommendations", params=params)
    if rows is not None:
        return expect(rows, target.url, kind=list)
    from tracker.backtest_cmd import Progress

    store = open_store(target, why, project=True)
    bar = Progress(True)
    try:
        return report(Advisor(store, config.advisor), store.last_observed() or utc_now(), pool, policy, bar)
    finally:
        bar.close()
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
        "eur now->rec": _pair(r, "euros"), "gCO2 now->rec": _pair(r, "gco2eq"),
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
    if not body:
        return "-"
    return describe(Scaling.from_api(body) if "policies" in body else ElasticSettings.from_api(body))


def _objective(row: dict, key: str):
    value = row["evidence"].get("objective", {}).get(key)
    return "-" if value is None else round(value)


def _window(row: dict) -> str:
    w = row["evidence"].get("window")
    return "-" if not w else f"{w['kind']} {w['hours']:.0f} h"


def _pair(row: dict, key: str) -> str:
    ev = row["evidence"]
    if ev.get("recommended", {}).get(key) is None:
        return "-"
    return f"{ev.get('current', {}).get(key, '?')} -> {ev['recommended'][key]}"
