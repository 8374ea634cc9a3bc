"""The read-only status page the daemon serves at `/` (to browsers; API clients still get the JSON index):
the fleet table, and a pool's timeline of demand against supply with its recommendations. One static
page with inline script, no build step, nothing fetched from elsewhere; its data comes from two public
read-only endpoints answered by fixed queries on the analyst connection (never the writer's):

    GET /status/fleet                      the rows of `pool-tracker pools`
    GET /status/pools/{uuid}?hours=H       demand, supply and bounds over the pool's last H hours, and the
                                           latest recommendation of each policy
"""
from __future__ import annotations

import json
from pathlib import Path

from tracker.fleet import sql_string, fleet_frame, fleet_query
from tracker.store import Store

HTML = (Path(__file__).with_name("status.html")).read_text()
MAX_POINTS = 4000


def fleet_rows(store: Store, policy: str, timeout_seconds: float) -> list[dict]:
    frame = fleet_frame(store.query(fleet_query(policy), limit=1_000_000, timeout_seconds=timeout_seconds),
                        keep_settings=True)
    rows = json.loads(frame.to_json(orient="records"))
    for row in rows:
        settings = row.pop("settings")
        row["current_settings"] = json.loads(settings) if isinstance(settings, str) else None
    return rows


def pool_timeline(store: Store, uuid: str, hours: float, timeout_seconds: float) -> dict:
    q = sql_string(uuid)
    points = store.query(
        f"""SELECT strftime("at", '%Y-%m-%dT%H:%M:%SZ') AS at, queued_or_running AS demand,
                   running_instances AS supply, max_total_slots AS max, min_total_slots AS min
            FROM pool_history WHERE pool_uuid = {q}
              AND "at" >= (SELECT max("at") FROM pool_history WHERE pool_uuid = {q}) - INTERVAL {float(hours)} HOUR
            ORDER BY "at" """, limit=1_000_000, timeout_seconds=timeout_seconds).rows
    step = max(1, len(points) // MAX_POINTS)
    kept = points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])
    recs = store.query(
        f"""SELECT json_extract_string(payload, '$.policy') AS policy, CAST(arg_max(payload, seq) AS VARCHAR) AS rec,
                   strftime(max(recorded_at), '%Y-%m-%dT%H:%M:%SZ') AS at
            FROM events WHERE type = 'recommendation_made' AND pool_uuid = {q} GROUP BY 1 ORDER BY 1""",
        limit=100, timeout_seconds=timeout_seconds).rows
    return {"uuid": uuid, "hours": hours, "points": [list(p) for p in kept],
            "recommendations": [{"policy": p, "at": at, **_recommendation(json.loads(r))} for p, r, at in recs]}


def _recommendation(payload: dict) -> dict:
    evidence = payload.get("evidence") or {}
    return {"settings": payload.get("settings"), "reason_code": payload.get("reason_code"),
            "reason": payload.get("reason"), "confidence": payload.get("confidence"),
            "current": evidence.get("current"), "recommended": evidence.get("recommended")}
