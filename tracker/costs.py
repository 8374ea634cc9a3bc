"""What pools cost and emit, and what the account may still spend or run: the API's answers -> values ->
events. Pure. Cumulative figures (euros, Wh, gCO2eq) are recorded as checkpoints, like executionTime,
so any hour's share is a difference; account-wide figures (quotas, budgets, credits) only when they change.
"""
from __future__ import annotations

import math
from datetime import datetime

from tracker.events import Event
from tracker.snapshot import FINISHED

CARBON_FIELDS = {   # the API's snake_case keys -> ours
    "total_consumed_energy_Wh": "energy_wh", "total_energy_it_Wh": "energy_it_wh",
    "total_reused_energy_Wh": "reused_energy_wh", "qarnot_carbon_footprint": "carbon_g",
    "equivalent_DC_carbon_footprint": "equivalent_dc_carbon_g",
    "saved_carbon_footprint_compute": "saved_carbon_compute_g", "saved_carbon_footprint_heat": "saved_carbon_heat_g",
    "saved_carbon_footprint_compute_heat": "saved_carbon_compute_heat_g",
    "saved_carbon_footprint_percent": "saved_carbon_percent", "PUE": "pue", "ERE": "ere", "ERF": "erf", "WUE": "wue",
}
QUOTA_FIELDS = {"maxCores": "max_cores", "runningCoresCount": "running_cores", "maxInstances": "max_instances",
                "runningInstancesCount": "running_instances"}
BUDGET_FIELDS = ("uuid", "alias", "consumedAmountInCents", "totalAmountInCents", "remainingAmountInCents",
                 "budgetOverrunPolicy", "startDateUtc", "expirationDateUtc", "isArchived")


class BadFigures(ValueError):
    """An answer of the cost, carbon or quota endpoints the tracker cannot use; names the field."""


def _number(value: object, field: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadFigures(f"{field} should be a finite number >= 0, got {value!r}"[:200])
    return float(value)


def parse_credits(body: object) -> float:
    """`{"credits": euros}` (a pool's consumption, or what the account has left)."""
    if not isinstance(body, dict):
        raise BadFigures(f"credits answer should be an object, got {type(body).__name__}")
    return _number(body.get("credits"), "credits")


def parse_carbon(body: object) -> dict:
    if not isinstance(body, dict):
        raise BadFigures(f"carbon facts should be an object, got {type(body).__name__}")
    out: dict = {ours: _number(body.get(api), api, optional=True) for api, ours in CARBON_FIELDS.items()}
    if out["energy_wh"] is None:
        raise BadFigures("carbon facts without total_consumed_energy_Wh")
    name = body.get("equivalent_datacenter_name")
    out["equivalent_datacenter"] = name if isinstance(name, str) else None
    return out


def parse_quotas(body: object) -> dict[str, dict[str, float | None]]:
    """User computing quotas -> {"flex" | "onDemand" | "reserved:<name>": {max_cores, running_cores, ...}}."""
    if not isinstance(body, dict):
        raise BadFigures(f"computing quotas should be an object, got {type(body).__name__}")
    groups = [(kind, body.get(kind)) for kind in ("flex", "onDemand")]
    groups += [(f"reserved:{r.get('reservationName') or r.get('machineKey')}", r)
               for r in body.get("reserved") or () if isinstance(r, dict)]
    return {kind: {ours: _number(group.get(api), f"{kind}.{api}", optional=True) for api, ours in QUOTA_FIELDS.items()}
            for kind, group in groups if isinstance(group, dict)}


def parse_budgets(body: object) -> list[dict]:
    budgets = body.get("budgets") if isinstance(body, dict) else None
    if not isinstance(budgets, list):
        raise BadFigures("project budgets answer has no 'budgets' list")
    return [{key: b.get(key) for key in BUDGET_FIELDS} for b in budgets if isinstance(b, dict)]


def pool_events(uuid: str, now: datetime, credits: float | None, carbon: dict | None) -> list[Event]:
    out = []
    if credits is not None:
        out.append(Event("credits_checkpointed", uuid, now, now, value_new=credits))
    if carbon is not None:
        out.append(Event("carbon_checkpointed", uuid, now, now, value_new=carbon["energy_wh"], payload=carbon))
    return out


def account_events(previous: dict, now: datetime, observed: dict) -> list[Event]:
    """`observed` maps "quotas", "budgets:<project>", "account_credits" to their latest value; an event
    only for those that changed since `previous` (same keys)."""
    return [Event("account_observed", None, now, now, payload={"what": key, "value": value})
            for key, value in observed.items() if previous.get(key) != value]


def due_for_figures(state: str | None, state_since: datetime | None, last: datetime | None, now: datetime,
                    every_seconds: float) -> bool:
    """Hourly (or `every_seconds`) while a pool lives; once more when it has ended, then never again."""
    if last is None:
        return True
    if state in FINISHED:
        return state_since is not None and last < state_since
    return (now - last).total_seconds() >= every_seconds
