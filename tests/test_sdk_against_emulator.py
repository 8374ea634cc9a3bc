"""The official qarnot SDK, unmodified, against the emulator over HTTP: proof of fidelity."""
import math

import pytest
import qarnot
from qarnot.exceptions import MissingPoolException, UnauthorizedException
from qarnot.multi_slots_settings import MultiSlotsSettings
from qarnot.scaling import FixedScalingPolicy, Scaling, TimePeriodAlways
from qarnot.scheduling_type import OnDemandScheduling

from helpers import HandClock, connect
from tracker.emulator import Emulator

HOUR = 3600.0


@pytest.fixture
def conn(emulator):
    return connect(emulator)


@pytest.fixture
def still():
    """The conftest's seeded cluster, on a clock the test moves by hand."""
    with Emulator.running(pools=12, seed=7, token="test-token", clock=HandClock()) as emu:
        yield emu


def test_create_submit_retrieve_and_list_across_pages(conn, emulator):
    pool = conn.create_pool("render", "docker-batch", 3)
    pool.tags = ["sdk-made"]
    pool.submit()
    assert pool.uuid in emulator.cluster.pools
    again = conn.retrieve_pool(pool.uuid)
    assert (again.name, again.profile, again.tags) == ("render", "docker-batch", ["sdk-made"])
    page = conn.pools_page(maximum=5, summary=False)
    assert len(page.page_data) == 5 and page.is_truncated and page.next_token
    listed = list(conn.all_pools(summary=False))
    assert len(listed) == len(emulator.cluster.pools) == 13
    assert {p.uuid for p in conn.all_pools(tags=["sdk-made"])} == {pool.uuid}


def test_setup_elastic_commit_is_seen_on_next_read(conn, emulator):
    pool = conn.create_pool("elastic", "docker-batch")
    pool.submit()
    pool.setup_elastic(minimum_total_slots=1, maximum_total_slots=7, minimum_idle_slots=1,
                       minimum_idle_time_seconds=120, resize_factor=0.5, resize_period=120)
    pool.commit()
    fresh = conn.retrieve_pool(pool.uuid)
    assert (fresh.is_elastic, fresh.elastic_minimum_slots, fresh.elastic_maximum_slots) == (True, 1, 7)
    assert (fresh.elastic_minimum_idle_slots, fresh.elastic_minimum_idle_time) == (1, 120)
    assert (fresh.elastic_resize_factor, fresh.elastic_resize_period) == (0.5, 120)
    assert emulator.cluster.pools[pool.uuid].model.settings.max_total_slots == 7


def test_update_close_delete_then_missing(still):
    conn = connect(still)
    pool = conn.create_pool("short-lived", "docker-batch", 2)
    pool.submit()
    pool.update(True)
    assert pool.state in ("Submitted", "PartiallyDispatched", "FullyDispatched", "PartiallyExecuting",
                          "FullyExecuting")
    pool.close()
    assert pool.state in ("Closing", "Closed")
    uuid = pool.uuid
    pool.delete()
    assert conn.retrieve_pool(uuid).state == "PendingDelete"   # deleting takes a moment
    still.clock.now += still.cluster.delete_delay
    with pytest.raises(MissingPoolException):
        conn.retrieve_pool(uuid)


def test_bad_token_is_unauthorized(emulator):
    with pytest.raises(UnauthorizedException):
        conn = qarnot.connection.Connection(client_token="wrong", cluster_url=emulator.url)
        list(conn.all_pools())


def test_tasks_submitted_into_a_pool_drive_its_slots(conn, emulator):
    pool = conn.create_pool("workers", "docker-batch")
    pool.setup_elastic(minimum_total_slots=0, maximum_total_slots=4, resize_period=90)
    pool.submit()
    task = conn.create_task("job", pool, 3)
    task.constants["EMULATOR_DURATION_SECONDS"] = "3600"
    task.submit()
    assert conn.retrieve_task(task.uuid).uuid == task.uuid
    sim = emulator.cluster
    sim.pool(pool.uuid, now=sim.clock() + 600)   # ten simulated minutes later
    model = sim.pools[pool.uuid].model
    assert (model.ready, model.busy, model.queued) == (3, 3, 0)


def test_status_of_every_pool_kind_reads_cleanly(still):
    still.clock.now += 2 * HOUR
    conn, kinds = connect(still), set()
    for pool in conn.all_pools(summary=False):
        per_node = pool.multi_slots_settings.to_json()["slotsPerNode"]
        kinds.add("scaling" if pool.scaling is not None else "static" if not pool.is_elastic
                  else "multi-slot" if per_node > 1 else "elastic")
        status = pool.status
        nodes = status.running_instances_info.per_running_instance_info
        assert status.execution_time_sec == round(still.cluster.pools[pool.uuid].execution_seconds())
        assert sum(m.time for m in status.execution_time_by_cpu_model) == status.execution_time_sec
        assert all(m.time_ghz >= m.core and m.model for m in status.execution_time_ghz_by_cpu_model)
        assert len(nodes) == min(pool.running_instance_count, 8)
        assert all(0 <= n.cpu_usage <= 100 and 0 <= n.memory_usage <= 1 and n.cpu_model for n in nodes)
        assert all(n.execution_attempt_count >= 1 and n.phase in ("execution", "idle") for n in nodes)
        by_model = status.running_instances_info.running_core_count_by_cpu_model
        assert sum(m["core"] for m in by_model) == pool.running_core_count
        assert repr(pool.scheduling_type) in ("Flex", "OnDemand", "Reserved")
        busy_slots = pool.pool_usage * pool.total_slot_capacity
        assert busy_slots <= pool.running_instance_count * per_node + 1e-6
    assert kinds == {"static", "multi-slot", "elastic", "scaling"}


def test_multi_slot_pool_is_created_sized_in_nodes_and_keeps_its_scaling(still):
    conn = connect(still)
    pool = qarnot.pool.Pool(conn, "quad", "docker-batch-large", 2, scheduling_type=OnDemandScheduling())
    pool.multi_slots_settings = MultiSlotsSettings(4)
    pool.submit()
    task = conn.create_task("fill", pool, 3)
    task.constants["EMULATOR_DURATION_SECONDS"] = "7200"
    task.submit()
    still.clock.now += 600
    fresh = conn.retrieve_pool(pool.uuid)
    assert (fresh.running_instance_count, fresh.running_core_count) == (2, 32)   # nodes, not slots
    assert (fresh.total_slot_capacity, fresh.pool_usage) == (8, 3 / 8)
    assert (fresh.multi_slots_settings, repr(fresh.scheduling_type)) == (MultiSlotsSettings(4), "OnDemand")
    phases = [n.phase for n in fresh.status.running_instances_info.per_running_instance_info]
    assert phases == ["execution", "idle"]   # three busy slots fit on the first node
    fresh.scaling = Scaling([FixedScalingPolicy(8, name="all-day", enabled_periods=[TimePeriodAlways()])])
    fresh.commit()
    again = conn.retrieve_pool(pool.uuid)
    assert again.scaling.policies[0].to_json() == {"type": "Fixed", "name": "all-day", "slotsCount": 8,
                                                   "enabledPeriods": [{"type": "Always"}]}
    assert again.running_instance_count == 2


def test_commit_and_close_on_a_closed_pool_are_refused(still):
    conn = connect(still)
    pool = conn.create_elastic_pool("done", "docker-batch", maximum_total_slots=3)
    pool.submit()
    pool.close()
    still.clock.now += 600
    pool.update(True)
    assert pool.state == "Closed"
    pool.setup_elastic(maximum_total_slots=9)
    with pytest.raises(UnauthorizedException, match="not running"):
        pool.commit()
    with pytest.raises(UnauthorizedException, match="not running"):
        pool.close()
    assert still.cluster.pools[pool.uuid].settings.max_total_slots == 3


def test_lists_with_tag_filters_any_and_all(still):
    conn, pools = connect(still), still.cluster.pools.values()
    anyone = {p.uuid for p in conn.all_pools(tags=["team-a", "bursty"])}
    both = {p.uuid for p in conn.all_pools(tags_intersect=["team-a", "bursty"])}
    assert anyone == {p.uuid for p in pools if {"team-a", "bursty"} & set(p.tags)}
    assert both == {p.uuid for p in pools if {"team-a", "bursty"} <= set(p.tags)}
    assert both < anyone
    paged = conn.pools_page(maximum=2, tags=["team-a", "bursty"])
    assert len(paged.page_data) == 2 and paged.is_truncated
