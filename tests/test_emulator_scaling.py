"""`scaling` through the emulator: the unmodified qarnot SDK and plain HTTP, on a clock moved by hand."""
from datetime import time

import httpx
import pytest
import qarnot
from qarnot.exceptions import QarnotGenericException, UnauthorizedException
from qarnot.multi_slots_settings import MultiSlotsSettings
from qarnot.scaling import (FixedScalingPolicy, ManagedTasksQueueScalingPolicy, Scaling, TimePeriodAlways,
                            TimePeriodWeeklyRecurring)

from tracker.emulator import Emulator

FRIDAY_8AM = 1_800_000_000.0   # Friday 2027-01-15 08:00:00 UTC
HOUR = 3600.0
# Fields that move with simulated time or with the re-sizing a commit starts (not with what it stores).
MOVING = {"instanceCount", "runningCoreCount", "runningInstanceCount", "poolUsage", "queuedOrRunningTaskInstancesCount",
          "state", "previousState", "stateTransitionTime", "previousStateTransitionTime", "lastModified",
          "executionTime", "status"}


class HandClock:
    def __init__(self, now=FRIDAY_8AM):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def emu():
    with Emulator.running(pools=12, seed=7, token="t", clock=HandClock()) as emulator:
        yield emulator


def connect(emu):
    return qarnot.connection.Connection(client_token=emu.token, cluster_url=emu.url)


def http(emu):
    return httpx.Client(base_url=emu.url, headers={"Authorization": emu.token})


def office_hours(slots=6, maximum=20):
    """Fixed `slots` on Fridays 10:00-14:00 UTC, otherwise elastic up to `maximum` (SDK objects)."""
    return Scaling([
        FixedScalingPolicy(slots, name="office-hours",
                           enabled_periods=[TimePeriodWeeklyRecurring(["friday"], time(10), time(14))]),
        ManagedTasksQueueScalingPolicy(min_total_slots=0, max_total_slots=maximum, min_idle_slots=0,
                                       min_idle_time_seconds=300, scaling_factor=0.5, name="default",
                                       enabled_periods=[TimePeriodAlways()])])


def test_a_committed_weekly_scaling_switches_active_policy_at_the_boundary(emu):
    conn = connect(emu)
    pool = conn.create_pool("office", "docker-batch", 1)
    pool.submit()
    pool.scaling = office_hours()
    pool.commit()
    fresh = conn.retrieve_pool(pool.uuid)
    assert [p.to_json() for p in fresh.scaling.policies] == [p.to_json() for p in office_hours().policies]
    assert (fresh.scaling.active_policy_name, fresh.total_slot_capacity) == ("default", 20)
    emu.clock.now = FRIDAY_8AM + 2 * HOUR - 1
    assert conn.retrieve_pool(pool.uuid).scaling.active_policy_name == "default"
    emu.clock.now = FRIDAY_8AM + 2 * HOUR
    assert conn.retrieve_pool(pool.uuid).scaling.active_policy_name == "office-hours"
    emu.clock.now += 120   # past the start-up delay: the Fixed policy's six slots run
    rush = conn.retrieve_pool(pool.uuid)
    assert (rush.running_instance_count, rush.running_core_count) == (6, 24)
    status = rush.status   # readable on a scaling pool
    assert len(status.running_instances_info.per_running_instance_info) == 6
    assert status.execution_time_sec == round(emu.cluster.pools[pool.uuid].execution_seconds())
    emu.clock.now = FRIDAY_8AM + 6 * HOUR
    assert conn.retrieve_pool(pool.uuid).scaling.active_policy_name == "default"
    switches = [(t.at - FRIDAY_8AM, t.old, t.new) for t in emu.cluster.ground_truth
                if t.pool == pool.uuid and t.kind == "policy"]
    assert switches[1:] == [(2 * HOUR, "default", "office-hours"), (6 * HOUR, "office-hours", "default")]


def test_a_pool_submitted_with_scaling_and_elastic_settings_is_sized_by_its_scaling(emu):
    conn = connect(emu)
    pool = conn.create_pool("both", "docker-batch", 1)
    pool.setup_elastic(maximum_total_slots=3)
    pool.scaling = Scaling([FixedScalingPolicy(5, name="five", enabled_periods=[TimePeriodAlways()])])
    pool.submit()
    emu.clock.now += 600
    fresh = conn.retrieve_pool(pool.uuid)
    assert (fresh.scaling.active_policy_name, fresh.running_instance_count, fresh.total_slot_capacity) == \
        ("five", 5, 5)
    assert fresh.is_elastic and fresh.elastic_maximum_slots == 3   # served as sent, not in force


def test_setup_elastic_pools_still_work_and_show_no_scaling(emu):
    conn = connect(emu)
    pool = conn.create_elastic_pool("legacy", "docker-batch", minimum_total_slots=2, maximum_total_slots=4)
    pool.submit()
    pool.setup_elastic(minimum_total_slots=3, maximum_total_slots=9)
    pool.commit()
    emu.clock.now += 600
    fresh = conn.retrieve_pool(pool.uuid)
    assert fresh.scaling is None and (fresh.elastic_minimum_slots, fresh.elastic_maximum_slots) == (3, 9)
    assert (fresh.running_instance_count, fresh.total_slot_capacity) == (3, 9)


def test_put_scaling_endpoint_over_http_and_its_refusals(emu):
    uuid = next(u for u, p in emu.cluster.pools.items() if p.settings.is_elastic and p.scaling is None)
    body = {"policies": [{"type": "Fixed", "name": "pinned", "slotsCount": 7,
                          "enabledPeriods": [{"type": "Always"}]},
                         {"type": "ManagedTasksQueue", "name": "sdk-minimal", "maxTotalSlots": 30}]}
    with http(emu) as api:
        assert api.put(f"/pools/{uuid}/scaling", json=body).status_code == 200
        doc = api.get(f"/pools/{uuid}").json()
        assert doc["scaling"]["activePolicyName"] == "pinned" and doc["totalSlotCapacity"] == 30
        assert doc["scaling"]["policies"][1] == {   # what the SDK may leave out, filled with the defaults
            "type": "ManagedTasksQueue", "name": "sdk-minimal", "minTotalSlots": 0, "maxTotalSlots": 30,
            "minIdleSlots": 0, "minIdleTimeSeconds": 90, "scalingFactor": 0.2, "enabledPeriods": [{"type": "Always"}]}
        emu.clock.now += 600
        assert api.get(f"/pools/{uuid}").json()["runningInstanceCount"] == 7
        assert ("policy", "elastic", "pinned") in [(t.kind, t.old, t.new) for t in emu.cluster.ground_truth
                                                    if t.pool == uuid]
        assert api.put("/pools/nope/scaling", json=body).status_code == 404
        assert api.post(f"/pools/{uuid}/close").status_code == 200
        refused = api.put(f"/pools/{uuid}/scaling", json=body)
        assert refused.status_code == 403 and "not running" in refused.json()["message"]


@pytest.mark.parametrize("policies,field", [
    ([{"type": "ManagedTasksQueue", "name": "d", "maxTotalSlots": 4, "scalingFactor": 1.5}],
     "policies[0].scalingFactor"),
    ([{"type": "Fixed", "name": "a", "slotsCount": 2}, {"type": "Fixed", "name": "b", "slotsCount": -1}],
     "policies[1].slotsCount"),
    ([{"type": "Fixed", "name": "w", "slotsCount": 2, "enabledPeriods": [
        {"type": "Weekly", "days": ["Fryday"], "startTimeUtc": "10:00:00", "endTimeUtc": "14:00:00"}]}],
     "policies[0].enabledPeriods[0].days[0]"),
    ([{"type": "Fixed", "name": "w", "slotsCount": 2, "enabledPeriods": [
        {"type": "Weekly", "days": ["friday"], "startTimeUtc": "25:00:00", "endTimeUtc": "14:00:00"}]}],
     "policies[0].enabledPeriods[0].startTimeUtc"),
    ([{"type": "Elastic", "name": "e"}], "policies[0].type"),
])
def test_a_bad_scaling_answers_400_naming_the_field_and_changes_nothing(emu, policies, field):
    uuid = next(u for u, p in emu.cluster.pools.items() if p.scaling is not None)
    with http(emu) as api:
        doc = api.get(f"/pools/{uuid}").json()
        for answer in (api.put(f"/pools/{uuid}/scaling", json={"policies": policies}),
                       api.put(f"/pools/{uuid}", json={**doc, "scaling": {"policies": policies}}),
                       api.post("/pools", json={"name": "bad", "profile": "docker-batch",
                                                "scaling": {"policies": policies}})):
            assert answer.status_code == 400 and field in answer.json()["message"], answer.text
        assert api.get(f"/pools/{uuid}").json()["scaling"] == doc["scaling"]
        assert len(emu.cluster.pools) == 12


def test_the_sdk_commit_of_a_bad_scaling_raises_with_the_field(emu):
    conn = connect(emu)
    pool = conn.create_pool("office", "docker-batch", 1)
    pool.submit()
    pool.scaling = office_hours()
    pool.scaling.policies[1].scaling_factor = 0
    with pytest.raises(QarnotGenericException, match=r"policies\[1\]\.scalingFactor"):
        pool.commit()


def test_a_put_without_scaling_leaves_the_scaling_document_alone(emu):
    uuid = next(u for u, p in emu.cluster.pools.items() if p.scaling is not None)
    with http(emu) as api:
        doc = api.get(f"/pools/{uuid}").json()
        legacy = {**doc, "elasticProperty": {**doc["elasticProperty"], "isElastic": True, "maxTotalSlots": 2}}
        for body in ({k: v for k, v in legacy.items() if k != "scaling"}, {**legacy, "scaling": None}):
            assert api.put(f"/pools/{uuid}", json=body).status_code == 200
            after = api.get(f"/pools/{uuid}").json()
            assert (after["scaling"], after["totalSlotCapacity"]) == (doc["scaling"], doc["totalSlotCapacity"])
            assert after["elasticProperty"] == legacy["elasticProperty"]   # kept, not in force
    assert emu.cluster.pools[uuid].model.scaling == emu.cluster.pools[uuid].scaling


def test_commit_of_only_scaling_keeps_every_other_field(emu):
    emu.clock.now += HOUR
    conn, pools = connect(emu), emu.cluster.pools.values()
    chosen = {
        "elastic": next(p for p in pools if p.settings.is_elastic and p.slots_per_node == 1 and not p.scaling),
        "static": next(p for p in pools if not p.settings.is_elastic and p.slots_per_node == 1 and not p.scaling),
        "scaling": next(p for p in pools if p.scaling is not None),
        "multi-slot": next(p for p in pools if p.slots_per_node > 1),
    }
    with http(emu) as api:
        for kind, emulated in chosen.items():
            before = api.get(f"/pools/{emulated.uuid}").json()
            pool = conn.retrieve_pool(emulated.uuid)
            capacity = before["totalSlotCapacity"]   # a new document allowing as many slots
            pool.scaling = office_hours(slots=max(1, capacity // 2), maximum=capacity)
            pool.commit()
            after = api.get(f"/pools/{emulated.uuid}").json()
            assert after["scaling"]["policies"] == [p.to_json() for p in office_hours(max(1, capacity // 2),
                                                                                     capacity).policies], kind
            unchanged = set(before) - MOVING - {"scaling"}
            assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}, kind
            assert set(after) == set(before), kind


def test_a_multi_slot_pool_follows_its_scaling_in_slots(emu):
    conn = connect(emu)
    pool = qarnot.pool.Pool(conn, "quad", "docker-batch-large", 1)
    pool.multi_slots_settings = MultiSlotsSettings(4)
    pool.scaling = office_hours(slots=10, maximum=16)
    pool.submit()
    emu.clock.now = FRIDAY_8AM + 2 * HOUR + 120
    fresh = conn.retrieve_pool(pool.uuid)
    assert fresh.scaling.active_policy_name == "office-hours"
    assert (fresh.running_instance_count, fresh.running_core_count, fresh.total_slot_capacity) == (3, 48, 16)


def test_with_no_policy_enabled_the_active_name_is_null_and_the_pool_empties(emu):
    uuid = next(u for u, p in emu.cluster.pools.items() if p.scaling is None and p.settings.is_elastic)
    weekend = {"policies": [{"type": "Fixed", "name": "weekend", "slotsCount": 3, "enabledPeriods": [
        {"type": "Weekly", "days": ["saturday", "sunday"], "startTimeUtc": "00:00:00", "endTimeUtc": "00:00:00"}]},
        {"type": "Fixed", "name": "unperiodised", "slotsCount": 2, "enabledPeriods": None}]}   # null: always
    with http(emu) as api:
        assert api.put(f"/pools/{uuid}/scaling", json=weekend).status_code == 200
        assert api.get(f"/pools/{uuid}").json()["scaling"]["activePolicyName"] == "unperiodised"
        del weekend["policies"][1]
        assert api.put(f"/pools/{uuid}/scaling", json=weekend).status_code == 200
        emu.clock.now += 6 * HOUR   # Friday 14:00: no policy enabled; running work finishes, slots go
        doc = api.get(f"/pools/{uuid}").json()
        assert doc["scaling"]["activePolicyName"] is None and doc["totalSlotCapacity"] == 3
        assert doc["runningInstanceCount"] == emu.cluster.pools[uuid].model.busy
        emu.clock.now += 10 * HOUR  # Saturday 00:00 UTC: the weekend policy starts its three slots
        assert api.get(f"/pools/{uuid}").json()["scaling"]["activePolicyName"] == "weekend"
