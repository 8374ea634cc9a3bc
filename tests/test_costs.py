"""Costs, carbon and account figures: parsing the API's answers, when figures are due, and the collector
beside the state poll (a slow carbon endpoint never delays a poll; one pool's failure costs no other)."""
import asyncio
import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracker.config import load_config
from tracker.costs import BadFigures, account_events, due_for_figures, parse_carbon, parse_credits, parse_quotas
from tracker.daemon import Daemon
from tracker.serve import ThreadedServer

T0 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
TOKEN = "costs-api-token-0123"
CARBON = {"total_consumed_energy_Wh": 1200.5, "total_energy_it_Wh": 1000.0, "total_reused_energy_Wh": 800.0,
          "qarnot_carbon_footprint": 30.2, "equivalent_datacenter_name": "French DC",
          "equivalent_DC_carbon_footprint": 90.1, "saved_carbon_footprint_compute": 10.0,
          "saved_carbon_footprint_heat": 50.0, "saved_carbon_footprint_compute_heat": 60.0,
          "saved_carbon_footprint_percent": 66.5, "PUE": 1.2, "ERE": 0.4, "ERF": 0.67, "WUE": 0.0}


def test_carbon_facts_read_with_the_api_names():
    facts = parse_carbon(CARBON)
    assert (facts["energy_wh"], facts["reused_energy_wh"], facts["carbon_g"], facts["pue"]) == (1200.5, 800.0, 30.2, 1.2)
    assert facts["equivalent_datacenter"] == "French DC"


@pytest.mark.parametrize("parse,body", [(parse_credits, {"credits": "12"}), (parse_credits, {"credits": -1}),
                                        (parse_credits, {"credits": math.nan}), (parse_credits, []),
                                        (parse_carbon, {**CARBON, "PUE": "high"}), (parse_carbon, {"PUE": 1.2}),
                                        (parse_quotas, {"flex": {"maxCores": True}})])
def test_figures_the_tracker_cannot_use_are_refused_naming_the_field(parse, body):
    with pytest.raises(BadFigures):
        parse(body)


def test_quotas_per_scheduling_type_including_reservations():
    quotas = parse_quotas({"flex": {"maxCores": 64, "runningCoresCount": 60, "maxInstances": 16,
                                    "runningInstancesCount": 15},
                           "onDemand": {"maxCores": 32, "runningCoresCount": 0, "maxInstances": 8,
                                        "runningInstancesCount": 0},
                           "reserved": [{"reservationName": "r1", "maxCores": 8, "runningCoresCount": 8}]})
    assert quotas["flex"]["running_cores"] == 60 and quotas["reserved:r1"]["max_cores"] == 8
    assert quotas["reserved:r1"]["max_instances"] is None


@pytest.mark.parametrize("state,since,last,now,due", [
    ("FullyExecuting", None, None, T0, True),                                   # never fetched
    ("FullyExecuting", None, T0, T0 + timedelta(minutes=59), False),            # hourly
    ("FullyExecuting", None, T0, T0 + timedelta(hours=1), True),
    ("Closed", T0 + timedelta(minutes=5), T0, T0 + timedelta(minutes=6), True),  # once more when it ends
    ("Closed", T0, T0 + timedelta(minutes=6), T0 + timedelta(days=9), False),  # then never again
])
def test_pool_figures_are_due_hourly_while_a_pool_lives_and_once_when_it_ends(state, since, last, now, due):
    assert due_for_figures(state, since, last, now, 3600) is due


@given(st.dictionaries(st.sampled_from(["quotas", "account_credits", "budgets:p1"]), st.integers(0, 3)),
       st.dictionaries(st.sampled_from(["quotas", "account_credits", "budgets:p1"]), st.integers(0, 3)))
def test_account_figures_are_recorded_only_when_they_change(previous, observed):
    events = account_events(previous, T0, observed)
    assert {e.payload["what"] for e in events} == {k for k, v in observed.items() if previous.get(k) != v}


class SlowCarbonApi:
    """Pool listing and credits answer at once; carbon facts take `carbon_delay` seconds, and one pool's
    figures fail with a 400: what a busy carbon service looks like to the tracker."""

    def __init__(self, pools: int, carbon_delay: float):
        self.pools = [{"uuid": f"p{i}", "name": f"pool-{i}", "state": "FullyExecuting", "runningCoreCount": 4,
                       "runningInstanceCount": 1, "projectUuid": "proj"} for i in range(pools)]
        self.carbon_delay, self.carbon_calls = carbon_delay, 0

        async def paginate(_):
            return JSONResponse({"data": self.pools, "isTruncated": False})

        async def credits(request: Request):
            if request.path_params["uuid"] == "p0":
                return JSONResponse({"message": "boom"}, status_code=400)
            return JSONResponse({"credits": 1.5})

        async def carbon(request: Request):
            self.carbon_calls += 1
            await asyncio.sleep(self.carbon_delay)
            if request.path_params["uuid"] == "p0":
                return JSONResponse({"message": "boom"}, status_code=400)
            return JSONResponse(CARBON)

        async def quotas(_):
            return JSONResponse({"flex": {"maxCores": 64, "runningCoresCount": 8, "maxInstances": 16,
                                          "runningInstancesCount": 2}})

        async def account(_):
            return JSONResponse({"credits": 99.0})

        async def budgets(_):
            return JSONResponse({"budgets": [{"uuid": "b", "alias": "q4", "consumedAmountInCents": 1000,
                                              "totalAmountInCents": 5000, "remainingAmountInCents": 4000,
                                              "budgetOverrunPolicy": "BlockNew"}]})

        self.server = ThreadedServer(Starlette(routes=[
            Route("/pools/paginate", paginate, methods=["POST"]),
            Route("/credits/v1/pools/{uuid}/credits", credits),
            Route("/carbon/v1/pools/{uuid}/carbon-facts", carbon),
            Route("/quotas/computing-quotas/user", quotas),
            Route("/credits/v1/accounts/credits", account),
            Route("/credits/v1/projects/{project}/budgets", budgets)]))


def test_a_slow_carbon_endpoint_never_delays_the_state_poll_and_one_bad_pool_costs_no_other(tmp_path):
    api = SlowCarbonApi(pools=6, carbon_delay=5.0)
    api.server.start()
    try:
        config, _ = load_config(env={}, overrides={
            "api.url": api.server.url, "store.path": str(tmp_path / "c.duckdb"), "http.port": 0,
            "advisor.enabled": False, "api.timeout_seconds": 10, "costs.max_pools_per_run": 4,
            "costs.concurrency": 4})
        daemon = Daemon(config, TOKEN, admin_token="x" * 32)
        assert daemon.poll().ok
        collecting = threading.Thread(target=daemon.collect, args=["pools"])
        collecting.start()
        while api.carbon_calls == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        assert daemon.poll().ok                              # while carbon facts are still on their way
        poll_seconds = time.perf_counter() - started
        collecting.join()
        assert poll_seconds < 2.5, poll_seconds          # it did not wait for the 5 s carbon answers
        figures = daemon.store.frame("SELECT pool_uuid, type FROM events WHERE type LIKE '%_checkpointed' "
                                     "AND type <> 'execution_checkpointed'")
        assert len(set(figures.pool_uuid)) == 3 and "p0" not in set(figures.pool_uuid)   # 4 due, p0 failed
        daemon.collect("pools")                                # the rest next run: spread, not all at once
        daemon.collect("account")
        assert {v.uuid for v in daemon.store.views.values() if v.credits_euros == 1.5} == {f"p{i}" for i in range(1, 6)}
        body, _ = daemon.metrics.exposition()
        assert b'qarnot_pool_credits_euros_total{pool_uuid="p1"} 1.5' in body
        assert b'qarnot_pool_pue_ratio{pool_uuid="p1"} 1.2' in body
        assert b'qarnot_quota_max_cores{scheduling_type="flex"} 64.0' in body
        assert b'qarnot_project_budget_remaining_euros{budget="q4",overrun_policy="BlockNew",project="proj"} 40.0' in body
        assert b"qarnot_account_credits_euros 99.0" in body
        daemon.collect("account")                              # nothing changed: nothing recorded again
        assert daemon.store.frame("SELECT count(*) AS n FROM events WHERE type = 'account_observed'").n[0] == 3
        daemon.store.close()
        restarted = Daemon(config, TOKEN, admin_token="x" * 32)   # where the collector left off survives
        assert restarted.costs.account["account_credits"] == 99.0 and len(restarted.costs.last_fetch) == 5
        restarted.store.close()
    finally:
        api.server.stop()


def test_recorded_euros_and_energy_agree_with_the_emulator_within_one_percent(tmp_path):
    """Over simulated hours, the daemon polls and collects; at each collection the euros and Wh it
    recorded per pool equal what the emulator billed at that instant."""
    from tracker.emulator import Emulator

    clock = [1_800_000_000.0]
    with Emulator.running(pools=6, seed=8, token="costs-e2e-token", clock=lambda: clock[0]) as emu:
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "api.clock": "server", "store.path": str(tmp_path / "e.duckdb"), "http.port": 0,
            "advisor.enabled": False, "costs.pool_interval_seconds": 3600})
        daemon = Daemon(config, emu.token, admin_token="x" * 32)
        checked = 0
        for step in range(6 * 120):                       # six simulated hours, a poll every 30 s
            assert daemon.poll().ok
            if step % 120 == 0:
                daemon.collect("pools")
                daemon.collect("account")
                truth = {c.uuid: c for c in emu.account.ledger.costs(clock[0])}
                for view in daemon.store.views.values():
                    billed = truth[view.uuid]
                    if billed.euros > 0:
                        assert view.credits_euros == pytest.approx(billed.euros, rel=0.01)
                        assert dict(view.carbon)["energy_wh"] == pytest.approx(billed.total_wh, rel=0.01)
                        checked += 1
            clock[0] += 30
        quotas = daemon.costs.account["quotas"]
        assert "flex" in quotas and daemon.costs.account["account_credits"] > 0
        hourly = daemon.store.frame("SELECT sum(euros) AS e FROM cost_hourly").e[0]
        assert hourly > 0 and daemon.store.frame("SELECT count(*) AS n FROM price_per_slot_hour").n[0] >= 1
        busiest = max(daemon.store.views.values(), key=lambda v: v.credits_euros or 0)
        price = daemon.store.unit_figures(busiest.scheduling_type)[0]
        billed = {"Flex": 0.10, "OnDemand": 0.20, "Reserved": 0.16}[busiest.scheduling_type]   # the emulator's prices
        assert price == pytest.approx(billed, rel=0.05)        # observed from credits and running slots alone
        daemon.store.close()
        from tracker.backtest_cmd import run_backtest
        from tracker.client import Target

        out = json.loads(run_backtest(trace_path=None, pool=busiest.uuid, target=Target(None, tmp_path / "e.duckdb"),
                                      settings_texts=(), policies=(), startup_delay=60.0, slo=300.0,
                                      cores_per_slot=None, fmt="json", plot_path=None))
        assert all(row["euros"] == pytest.approx(row["slot_hours"] * price) for row in out["results"])
    assert checked >= 10


def test_a_pool_held_at_the_account_quota_is_reported_as_such_not_as_saturated(tmp_path):
    from policies.settings import ElasticSettings
    from policies.workload import Workload
    from tracker.emulator import Emulator
    from tracker.emulator.quotas import Limit, Quotas

    clock = [1_800_000_000.0]
    with Emulator.running(pools=0, token="quota-e2e-token", clock=lambda: clock[0],
                          quotas=Quotas(flex=Limit(max_cores=16, max_instances=4))) as emu:
        emu.cluster.create_pool("capped", "docker-batch", ElasticSettings(0, 40, 0, 300, 1.0, 90), at=clock[0],
                                workload=Workload("steady", 3, 4.0))
        config, _ = load_config(env={}, overrides={"api.url": emu.url, "api.clock": "server", "http.port": 0,
                                                    "store.path": str(tmp_path / "q.duckdb"), "advisor.enabled": False})
        daemon = Daemon(config, emu.token, admin_token="x" * 32)
        for _ in range(8 * 60):                                  # eight hours, a poll every minute
            assert daemon.poll().ok
            clock[0] += 60
        daemon.collect("account")
        (view,) = daemon.store.views.values()
        body = daemon.metrics.exposition()[0].decode()
        assert view.running_instances <= 4 and view.queued_or_running > view.running_instances
        assert f'qarnot_pool_status_held_at_quota{{pool_uuid="{view.uuid}"}} 1.0' in body
        assert 'qarnot_quota_max_cores{scheduling_type="flex"} 16.0' in body
        from datetime import datetime, timezone
        (rec,) = daemon.advisor.recommend(view, datetime.fromtimestamp(clock[0], timezone.utc), ["target-tracking"])
        assert rec.settings.max_total_slots == rec.evidence["capped_at_quota"] == 4, rec   # the quota, not 40
        daemon.store.close()


def test_recommendations_are_priced_stay_within_the_quota_and_a_commit_that_breaks_the_budget_is_refused():
    from policies.recommendation import Recommendation
    from policies.settings import ElasticSettings
    from tracker.advisor import add_money_and_carbon, cap_at_quota, over_budget, quota_headroom
    from tracker.events import PoolView

    evidence = {"window": {"hours": 42.0}, "current": {"slot_hours": 100.0, "wait_p95_seconds": 300.0},
                "recommended": {"slot_hours": 142.0, "wait_p95_seconds": 40.0}}
    add_money_and_carbon(evidence, 0.10, 25.0)
    assert evidence["recommended"]["euros"] == 14.2 and evidence["current"]["gco2eq"] == 2500.0
    view = PoolView("p", state="FullyExecuting", scheduling_type="Flex", running_instances=2, running_cores=8,
                    slots_per_node=2)
    quotas = {"flex": {"max_instances": 10, "running_instances": 8, "max_cores": 64, "running_cores": 32}}
    assert quota_headroom(quotas, view) == 8          # 4 nodes free to it (10 - 8 + its 2), 2 slots each
    rec = Recommendation("search", ElasticSettings(0, 20, 1, 300, 1.0, 90), "ok", "because", 1.0, evidence)
    capped = cap_at_quota(rec, 8)
    assert capped.settings.max_total_slots == 8 and "quota" in capped.reason
    assert cap_at_quota(rec, None) is rec and quota_headroom({}, view) is None
    # +4.20 euros over 42 h is +16.80 a week: refused with 10 left, allowed with 20 left
    refused = over_budget(rec, [{"remainingAmountInCents": 1000}])
    assert refused is not None and refused.code == "over_budget" and not refused.allowed
    assert over_budget(rec, [{"remainingAmountInCents": 2000}]) is None
    cheaper = Recommendation("search", None, "ok", "", 1.0, {**evidence, "recommended": {"euros": 5.0}})
    assert over_budget(cheaper, [{"remainingAmountInCents": 0}]) is None   # saving money is never refused
