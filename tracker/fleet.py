"""`pool-tracker pools`: the fleet on one screen (as `kubectl get` gives it), and pools named by name or uuid
everywhere a command takes one. Read through the daemon's admin SQL endpoint, or the file when no daemon runs."""
from __future__ import annotations

import json

import pandas as pd

from tracker.client import Target
from tracker.sql import as_frame, run_query
from tracker.store import QueryResult

COLUMNS = ("name", "uuid", "state", "slots", "min", "max", "queue", "last_change", "recommendation")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fleet_query(policy: str) -> str:
    return f"""
WITH rec AS (
    SELECT pool_uuid, arg_max(payload, seq) AS payload
    FROM events
    WHERE type = 'recommendation_made' AND json_extract_string(payload, '$.policy') = {sql_string(policy)}
    GROUP BY pool_uuid
)
SELECT p.name, p.pool_uuid AS uuid, p.state, p.running_instances AS slots,
       TRY_CAST(json_extract(p.elastic_settings, '$.minTotalSlots') AS INTEGER) AS "min",
       TRY_CAST(json_extract(p.elastic_settings, '$.maxTotalSlots') AS INTEGER) AS "max",
       p.queued_or_running AS queue, strftime(p.last_change_at, '%Y-%m-%d %H:%M:%S') AS last_change,
       CAST(p.elastic_settings AS VARCHAR) AS settings, CAST(rec.payload AS VARCHAR) AS recommended
FROM pool_current p LEFT JOIN rec USING (pool_uuid)
ORDER BY p.name, p.pool_uuid"""


SHORT = {"minTotalSlots": "min", "maxTotalSlots": "max", "minIdleSlots": "min_idle",
         "minIdleTimeSeconds": "idle_s", "rampResizeFactor": "factor", "resizePeriod": "period_s"}


def describe_recommendation(settings_json: str | None, recommended_json: str | None) -> str:
    """What the advisor proposes, as the knobs that would change: `max 20->12, min_idle 2->1`."""
    if not isinstance(recommended_json, str):       # None, or NaN once in a frame
        return "-"
    rec = json.loads(recommended_json)
    proposed = rec.get("settings")
    if not proposed:
        return rec.get("reason_code") or "-"
    current = json.loads(settings_json) if isinstance(settings_json, str) else {}
    changes = [f"{SHORT[k]} {_num(current.get(k))}->{_num(v)}" for k, v in proposed.items()
               if k in SHORT and current.get(k) != v]
    return ", ".join(changes) if changes else "keep"


def _num(value) -> str:
    if value is None:
        return "?"
    return f"{value:g}" if isinstance(value, float) else str(value)


def fleet(target: Target, policy: str = "search", timeout_seconds: float = 30.0) -> pd.DataFrame:
    return fleet_frame(run_query(fleet_query(policy), target, limit=10_000_000, timeout_seconds=timeout_seconds))


def fleet_frame(result: QueryResult, keep_settings: bool = False) -> pd.DataFrame:
    """The answer of `fleet_query` as the fleet table (also served to the status page, with the settings)."""
    frame = as_frame(result)
    for column in ("slots", "min", "max", "queue"):
        frame[column] = frame[column].astype("Int64")      # whole numbers, "-" where unknown
    frame["recommendation"] = [describe_recommendation(s, r) for s, r in zip(frame["settings"], frame["recommended"])]
    return frame[list(COLUMNS) + (["settings"] if keep_settings else [])]


def render_fleet(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return frame.to_json(orient="records", indent=1)
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if frame.empty:
        return "(no pools)"
    shown = frame.astype(object).where(frame.notna(), "-")
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 60):
        return shown.to_string(index=False)


def summary(frame: pd.DataFrame) -> str:
    states = frame["state"].fillna("unknown").value_counts()
    return (f"{len(frame)} pools, {int(frame['slots'].sum())} slots running, {int(frame['queue'].sum())} task "
            "instances queued or running; " + ", ".join(f"{n} {s}" for s, n in states.items()))


def resolve_pool(target: Target, given: str) -> str:
    """The uuid of the pool named `given` (a uuid or a name); an ambiguous name is refused listing the matches.
    A value matching no current pool is passed on as it is (a vanished pool's uuid still has history)."""
    rows = run_query(f"SELECT pool_uuid, name, state FROM pool_current WHERE pool_uuid = {sql_string(given)} "
                     f"OR name = {sql_string(given)} ORDER BY pool_uuid", target, limit=1000).rows
    by_uuid = [r for r in rows if r[0] == given]
    if by_uuid:
        return given
    if len(rows) > 1:
        matches = "; ".join(f"{uuid} ({state or 'unknown'})" for uuid, _, state in rows)
        raise LookupError(f"{len(rows)} pools are named {given!r}: {matches}; give the uuid instead")
    return rows[0][0] if rows else given
