"""The official qarnot SDK, unmodified, against the emulator over HTTP: proof of fidelity."""
import pytest
import qarnot
from qarnot.exceptions import MissingPoolException, UnauthorizedException


@pytest.fixture
def conn(emulator):
    return qarnot.connection.Connection(client_token=emulator.token, cluster_url=emulator.url)


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


def test_update_close_delete_then_missing(conn, emulator):
    pool = conn.create_pool("short-lived", "docker-batch", 2)
    pool.submit()
    pool.update(True)
    assert pool.state in ("Submitted", "PartiallyDispatched", "FullyDispatched", "PartiallyExecuting",
                          "FullyExecuting")
    pool.close()
    assert pool.state in ("Closing", "Closed")
    uuid = pool.uuid
    pool.delete()
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
