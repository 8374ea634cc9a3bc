"""The emulated account through the unmodified qarnot SDK: credits, carbon facts, budgets, quotas.

Every test runs the emulator on a clock it moves by hand, so "hours later" costs no waiting and no luck.
"""
import httpx
import pytest
import qarnot
from qarnot.exceptions import NotEnoughCreditsException, QarnotGenericException
from qarnot.project import Project as SdkProject
from qarnot.scheduling_type import OnDemandScheduling

from helpers import HandClock, connect
from tracker.emulator import Budget, Emulator, Limit, Prices, Project, Quotas
from tracker.emulator.billing import carbon_facts, integrate_truth
from tracker.emulator.quotas import QUOTA_ERROR_CODE, UNLIMITED

HOUR = 3600.0
FACT_KEYS = {"total_consumed_energy_Wh", "total_energy_it_Wh", "total_reused_energy_Wh", "qarnot_carbon_footprint",
             "equivalent_datacenter_name", "equivalent_DC_carbon_footprint", "saved_carbon_footprint_compute",
             "saved_carbon_footprint_heat", "saved_carbon_footprint_compute_heat", "saved_carbon_footprint_percent",
             "PUE", "ERE", "ERF", "WUE"}


def costs(emu):
    return httpx.get(f"{emu.url}/_emulator/costs").json()


def static_pool(conn, name, instances, project=None):
    """A static OnDemand pool of `instances` 16-core nodes (one slot each)."""
    pool = qarnot.pool.Pool(conn, name, "docker-batch-large", instances, scheduling_type=OnDemandScheduling(),
                            project=None if project is None else SdkProject(project))
    pool.submit()
    return pool


def test_the_sdk_reads_credits_carbon_facts_budgets_and_quotas():
    with Emulator.running(pools=12, seed=7, token="t", clock=HandClock()) as emu:
        emu.clock.now += 3 * HOUR
        conn = connect(emu)
        truth = {c["uuid"]: c for c in costs(emu)["pools"]}
        pools = list(conn.all_pools())
        for pool in pools:
            mine = truth[pool.uuid]
            assert pool.credits().amount_in_euros == pytest.approx(mine["euros"], rel=1e-9)
            facts = pool.carbon_facts()
            assert facts.energy_it_Wh == pytest.approx(mine["energyItWh"], rel=1e-9)
            assert facts.energy_consumption_Wh == pytest.approx(mine["energyWh"], rel=1e-9)
            assert facts.carbon_footprint_gC02eq == pytest.approx(mine["carbonGCO2eq"], rel=1e-9)
            assert facts.energy_reuse_Wh == pytest.approx(0.9 * facts.energy_consumption_Wh)
            assert (facts.PUE, facts.ERF) == (1.05, 0.9) and facts.ERE == pytest.approx(1.05 * 0.1)
            assert facts.saved_carbon_footprint_compute_heat_gC02eq == pytest.approx(
                facts.saved_carbon_footprint_compute_gC02eq + facts.saved_carbon_footprint_heat_gC02eq)
            assert pool._project_uuid == mine["projectUuid"] and mine["projectUuid"]
        busy = max(pools, key=lambda p: truth[p.uuid]["euros"])
        assert truth[busy.uuid]["euros"] > 0
        raw = httpx.get(f"{emu.url}/carbon/v1/pools/{busy.uuid}/carbon-facts",
                        headers={"Authorization": "t"}).json()
        assert set(raw) == FACT_KEYS and raw["equivalent_datacenter_name"] == "average-datacenter-france"
        world = busy.carbon_facts("average-datacenter-world")
        assert world.equivalent_datacenter_name == "average-datacenter-world"
        assert world.equivalent_dc_carbon_footprint_gC02eq > busy.carbon_facts().equivalent_dc_carbon_footprint_gC02eq
        with pytest.raises(QarnotGenericException, match="comparisonDatacenter"):
            busy.carbon_facts("nowhere")

        spent = sum(c["euros"] for c in costs(emu)["pools"])
        assert conn.credits().amount_in_euros == pytest.approx(50_000.0 - spent, rel=1e-12)

        info = conn.user_info
        assert {p.name for p in info.projects} == {"default", "research", "rendering"}
        assert [p.name for p in info.projects if p.is_default] == ["default"]
        by_project = costs(emu)["projects"]
        for project in info.projects:
            active, every = project.get_active_budgets(conn), project.get_all_budgets(conn)
            assert {b._uuid for b in active} <= {b._uuid for b in every}
            for budget in every:
                assert budget._consumed_in_cents == round(by_project[project.uuid] * 100)
                assert budget._remaining_in_cents == max(0, budget._total_in_cents - budget._consumed_in_cents)
                assert budget._budget_overrun_policy in ("AlertOnly", "BlockNew", "StopAndBlockAll")
            assert all(not b._is_archived for b in active)
        assert any(b._is_archived for p in info.projects for b in p.get_all_budgets(conn))

        user = conn.get_user_computing_quotas()
        live = emu.cluster.all_pools()
        flex_cores = sum(p.running_cores for p in live if p.scheduling_type == "Flex")
        assert (user.flex.max_cores, user.flex.running_cores_count) == (UNLIMITED, flex_cores)
        assert user.on_demand.running_instances_count == sum(
            p.running_instances for p in live if p.scheduling_type == "OnDemand")
        assert len(user.reserved) == 1 and user.reserved[0].machine_key
        organization = conn.get_organization_computing_quotas()
        assert organization.flex.running_cores_count == flex_cores
        assert info.computing_quotas.user.flex.running_cores_count == flex_cores


def test_euros_and_watt_hours_grow_as_documented_over_simulated_hours():
    prices = Prices(per_slot_hour={"Flex": 0.05, "OnDemand": 0.30, "Reserved": 0.2}, wh_per_core_second=12 / HOUR,
                    pue=1.1, heat_reuse_share=0.75, wue=0.02)
    with Emulator.running(pools=0, token="t", clock=HandClock(), prices=prices, startup_delay=60.0) as emu:
        conn = connect(emu)
        start = emu.clock.now
        pool = static_pool(conn, "two-nodes", 2)
        for hours in (1, 5, 24):
            emu.clock.now = start + hours * HOUR
            # two slots billed from creation (starting, then ready); 2 x 16 cores running after 60 s
            assert pool.credits().amount_in_euros == pytest.approx(2 * hours * 0.30, rel=1e-12)
            facts = pool.carbon_facts()
            core_seconds = 2 * 16 * (hours * HOUR - 60)
            assert facts.energy_it_Wh == pytest.approx(core_seconds * 12 / HOUR, rel=1e-12)
            assert facts.energy_consumption_Wh == pytest.approx(1.1 * facts.energy_it_Wh, rel=1e-12)
            assert facts.energy_reuse_Wh == pytest.approx(0.75 * facts.energy_consumption_Wh, rel=1e-12)
            assert (facts.PUE, facts.ERF, facts.WUE) == (1.1, 0.75, 0.02)
            assert facts.ERE == pytest.approx(1.1 * 0.25)
            assert facts.carbon_footprint_gC02eq == pytest.approx(facts.energy_consumption_Wh / 1000 * 52.0)
        # the ground truth gives the same figures at any past instant
        with emu.cluster.lock:
            records = list(emu.cluster.ground_truth)
        slot_seconds, cores = integrate_truth(records, pool.uuid, start + 2 * HOUR)
        assert (slot_seconds, cores) == pytest.approx((2 * 2 * HOUR, 2 * 16 * (2 * HOUR - 60)))
        assert carbon_facts(cores, prices)["total_energy_it_Wh"] == pytest.approx(cores * 12 / HOUR)
        pool.close()
        emu.clock.now += HOUR
        closed = costs(emu)["pools"][0]
        emu.clock.now += 10 * HOUR
        assert costs(emu)["pools"][0]["euros"] == pytest.approx(closed["euros"])   # a closed pool costs nothing
        pool.delete()
        emu.clock.now += HOUR
        assert costs(emu)["pools"][0]["euros"] == pytest.approx(closed["euros"])   # deleted: still counted
        assert not emu.cluster.pools
        assert conn.credits().amount_in_euros == pytest.approx(50_000 - closed["euros"])


def test_a_pool_at_quota_stops_growing_and_says_so():
    quotas = Quotas(flex=Limit(max_cores=32, max_instances=100))
    with Emulator.running(pools=0, token="t", clock=HandClock(), quotas=quotas) as emu:
        conn, start = connect(emu), emu.clock.now
        first = conn.create_elastic_pool("first", "docker-batch", minimum_total_slots=0, maximum_total_slots=20,
                                         resize_period=90)
        first.submit()
        task = conn.create_task("short", first, 20)
        task.constants["EMULATOR_DURATION_SECONDS"] = "1800"
        task.submit()
        model = emu.cluster.pools[first.uuid].model
        for _ in range(8):
            emu.clock.now += 120
            first.update(True)
            assert model.ready + model.starting <= 8            # 32 cores / 4 per node
        assert (first.running_core_count, model.queued) == (32, 12)
        assert QUOTA_ERROR_CODE in [e.code for e in first.errors]
        user = conn.get_user_computing_quotas()
        assert (user.flex.max_cores, user.flex.running_cores_count) == (32, 32)
        assert first.uuid in costs(emu)["heldAtQuota"]
        assert first.elastic_maximum_slots == 20                 # the pool keeps its own settings

        second = conn.create_elastic_pool("second", "docker-batch", minimum_total_slots=0, maximum_total_slots=4,
                                          resize_period=90)
        second.submit()
        task = conn.create_task("long", second, 4)
        task.constants["EMULATOR_DURATION_SECONDS"] = "36000"
        task.submit()
        emu.clock.now += 600
        second.update(True)
        assert second.running_core_count == 0 and QUOTA_ERROR_CODE in [e.code for e in second.errors]

        # the first pool's work ends (20 x 1800 s on 8 slots), it is closed: the second one grows
        emu.clock.now = start + 4 * 1800 + 900
        first.close()
        emu.clock.now += 900
        second.update(True)
        first.update(True)
        assert second.running_core_count == 16 and not second.errors
        assert first.state == "Closed" and not first.errors
        quota_truth = [(t.pool, t.new) for t in emu.cluster.ground_truth if t.kind == "quota"]
        assert quota_truth == [(first.uuid, True), (second.uuid, True), (first.uuid, False), (second.uuid, False)]


def test_quotas_hold_a_seeded_cluster_and_change_nothing_when_they_never_bind():
    def run(quotas, steps=120, step=97.0):
        emu = Emulator(pools=24, seed=3, token="t", clock=HandClock(), quotas=quotas)
        peaks = {}
        for _ in range(steps):
            emu.clock.now += step
            pools = emu.cluster.all_pools()
            for kind in ("Flex", "OnDemand", "Reserved"):
                nodes = [(p.nodes.nodes_for(p.model.ready + p.model.starting), p.cores_per_node)
                         for p in pools if p.scheduling_type == kind]
                used = (sum(n * c for n, c in nodes), sum(n for n, _ in nodes))
                peaks[kind] = max(peaks.get(kind, (0, 0)), used)
                limit = None if quotas is None else quotas.limit(kind)
                if limit is not None:
                    assert used[0] <= limit.max_cores and used[1] <= limit.max_instances
        truth = sorted((t.pool, t.at, t.kind, t.old, t.new) for t in emu.cluster.ground_truth if t.kind != "quota")
        return peaks, truth, emu.account.held_at_quota()

    tight = Quotas(flex=Limit(96, 20), on_demand=Limit(40, 6), reserved=Limit(64, 64))
    peaks, _, held = run(tight)
    assert peaks["Flex"][0] == 96 or peaks["Flex"][1] == 20     # the quota was reached ...
    unlimited_peaks, unlimited_truth, _ = run(None)
    assert unlimited_peaks["Flex"][0] > 96                      # ... where the pools wanted more
    huge = Limit(10**6, 10**6)
    _, truth, held = run(Quotas(huge, huge, huge))
    assert truth == unlimited_truth and not held


def test_block_new_refuses_a_new_pool_once_the_budget_is_spent():
    tiny, alerting = "5e1ec7ed-0000-4000-8000-0000000000aa", "5e1ec7ed-0000-4000-8000-0000000000bb"
    projects = (Project(tiny, "tiny", (Budget("one euro", 100, "BlockNew"),), is_default=True),
                Project(alerting, "alerting", (Budget("one euro too", 100, "AlertOnly"),)))
    with Emulator.running(pools=0, token="t", clock=HandClock(), projects=projects) as emu:
        conn = connect(emu)
        static_pool(conn, "spender", 2, tiny)          # 2 OnDemand slots: 0.40 euro per hour
        static_pool(conn, "alerter", 2, alerting)
        no_project = static_pool(conn, "default", 1)  # joins the default project
        assert conn.retrieve_pool(no_project.uuid)._project_uuid == tiny
        emu.clock.now += HOUR
        static_pool(conn, "still-fine", 1, tiny)       # 0.40 + 0.20 euro spent: under budget
        emu.clock.now += 2 * HOUR
        budget = SdkProject(tiny).get_active_budgets(conn)[0]
        assert budget._consumed_in_cents >= 100 and budget._remaining_in_cents == 0
        with pytest.raises(NotEnoughCreditsException, match="one euro"):
            static_pool(conn, "refused", 1, tiny)
        with pytest.raises(NotEnoughCreditsException):
            static_pool(conn, "refused-too", 1)        # the default project is the spent one
        assert SdkProject(alerting).get_active_budgets(conn)[0]._remaining_in_cents == 0
        static_pool(conn, "alert-only", 1, alerting)   # AlertOnly refuses nothing
        assert len(emu.cluster.pools) == 5
        unknown = httpx.post(f"{emu.url}/pools", headers={"Authorization": "t"},
                             json={"name": "x", "profile": "docker-batch", "instanceCount": 1,
                                   "projectUuid": "no-such-project"})
        assert unknown.status_code == 400 and "projectUuid" in unknown.json()["message"]


def test_commits_and_scaling_documents_stay_within_the_quota():
    from policies.scaling import FixedPolicy, Scaling

    quotas = Quotas(flex=Limit(max_cores=24, max_instances=100))
    with Emulator.running(pools=0, token="t", clock=HandClock(), quotas=quotas) as emu:
        conn = connect(emu)
        pool = conn.create_elastic_pool("grows", "docker-batch", minimum_total_slots=0, maximum_total_slots=2,
                                        resize_period=90)
        pool.submit()
        task = conn.create_task("work", pool, 20)
        task.constants["EMULATOR_DURATION_SECONDS"] = "36000"
        task.submit()
        emu.clock.now += 45                        # between two grid instants
        pool.setup_elastic(minimum_total_slots=0, maximum_total_slots=20, resize_period=90)
        pool.commit()
        model = emu.cluster.pools[pool.uuid].model
        for _ in range(40):
            emu.clock.now += 30
            emu.cluster.pool(pool.uuid)
            assert model.ready + model.starting <= 6     # 24 cores / 4 per node
        assert model.ready == 6 and conn.retrieve_pool(pool.uuid).elastic_maximum_slots == 20
        emu.cluster.set_settings(pool.uuid, Scaling((FixedPolicy("all", 10),)))
        for _ in range(10):
            emu.clock.now += 30
            emu.cluster.pool(pool.uuid)
            assert model.ready + model.starting <= 6
        assert QUOTA_ERROR_CODE in [e.code for e in conn.retrieve_pool(pool.uuid).errors]
