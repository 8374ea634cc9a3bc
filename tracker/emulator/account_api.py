"""HTTP routes of the emulated account: credits, budgets, carbon facts, computing quotas (SDK 2.23.0 paths).

| path | answer |
|---|---|
| `GET /credits/v1/pools/{uuid}/credits` | `{"credits": euros consumed}` (404: unknown pool) |
| `GET /credits/v1/accounts/credits` | `{"credits": euros left}` |
| `GET /credits/v1/projects/{uuid}/budgets?activeOnly=True` | `{"budgets": [{uuid, alias, consumedAmountInCents, ...}]}` |
| `GET /carbon/v1/pools/{uuid}/carbon-facts[?comparisonDatacenter=NAME]` | snake_case facts (`billing.carbon_facts`) |
| `GET /quotas/computing-quotas/user` | `{"flex": {maxCores, runningCoresCount, maxInstances, runningInstancesCount}, "onDemand": {...}, "reserved": [{reservationName, machineKey, ...}]}` |
| `GET /quotas/computing-quotas/organization` | the same, each entry with `runningCountsPerUser` |
| `GET /_emulator/costs` | ground truth: every pool's slot-seconds, core-seconds, euros, Wh, gCO2eq now |
"""
from __future__ import annotations

from starlette.routing import Route

from tracker.emulator.billing import carbon_facts, euros
from tracker.emulator.ledger import ORGANIZATION_NAME

EMAIL = "emulator@127.0.0.1"   # the one user of the emulated organization (as `GET /info` says)


def _flag(text: str | None) -> bool:
    if text is None or text == "":
        return False
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"activeOnly must be true or false, got {text!r}")
    return lowered == "true"


def organization_report(user: dict) -> dict:
    def detailed(entry: dict) -> dict:
        counts = {"runningInstancesCount": entry["runningInstancesCount"],
                  "runningCoresCount": entry["runningCoresCount"]}
        return {**entry, "runningCountsPerUser": {EMAIL: counts} if counts["runningInstancesCount"] else {}}
    return {"name": ORGANIZATION_NAME, "flex": detailed(user["flex"]), "onDemand": detailed(user["onDemand"]),
            "reserved": [detailed(entry) for entry in user["reserved"]]}


def user_info_extras(account) -> dict:
    """What `GET /info` adds for the SDK's `UserInfo`: computing quotas and projects."""
    user = account.quota_report()
    return {"computingQuotas": {"user": user, "organization": organization_report(user)},
            "projects": [p.to_api() for p in account.ledger.projects.values()]}


def account_routes(cluster, account, json_response) -> list[Route]:
    ledger = account.ledger

    def find(request):
        return cluster.require(request.path_params["uuid"])

    async def pool_credits(request):
        with cluster.lock:
            pool = find(request)
            return json_response({"credits": euros(pool.model.slot_seconds, pool.scheduling_type, ledger.prices)})

    async def account_credits(_):
        return json_response({"credits": ledger.credits_left()})

    async def project_budgets(request):
        active_only = _flag(request.query_params.get("activeOnly"))
        return json_response({"budgets": ledger.budgets(request.path_params["uuid"], active_only)})

    async def pool_carbon_facts(request):
        wanted = request.query_params.get("comparisonDatacenter") or None
        with cluster.lock:
            pool = find(request)
            return json_response(carbon_facts(pool.core_seconds(), ledger.prices, wanted))

    async def user_quotas(_):
        return json_response(account.quota_report())

    async def organization_quotas(_):
        return json_response(organization_report(account.quota_report()))

    async def costs(_):
        with cluster.lock:
            now = cluster.clock()
            pools = ledger.costs(now)
            return json_response({
                "now": now, "pools": [c.to_api() for c in pools],
                "accountCredits": ledger.initial_credits - sum(c.euros for c in pools),
                "projects": {uuid: sum(c.euros for c in pools if c.project == uuid) for uuid in ledger.projects},
                "heldAtQuota": sorted(account.held_at_quota())})

    return [
        Route("/credits/v1/pools/{uuid}/credits", pool_credits),
        Route("/credits/v1/accounts/credits", account_credits),
        Route("/credits/v1/projects/{uuid}/budgets", project_budgets),
        Route("/carbon/v1/pools/{uuid}/carbon-facts", pool_carbon_facts),
        Route("/quotas/computing-quotas/user", user_quotas),
        Route("/quotas/computing-quotas/organization", organization_quotas),
        Route("/_emulator/costs", costs),
    ]
