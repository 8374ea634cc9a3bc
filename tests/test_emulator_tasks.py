"""The emulator's tasks: read by the unmodified SDK, consistent with the pools' counts, filtered, paged
and kept only for a bounded time."""
import httpx
import pytest
from hypothesis import given, settings, strategies as st

from helpers import HandClock, connect
from tracker.emulator import Emulator
from tracker.emulator.filters import named_pools
from tracker.emulator.tasks import TaskBook

HOUR = 3600.0
TERMINAL = {"Success", "Cancelled", "Failure"}


@pytest.fixture
def still():
    with Emulator.running(pools=6, seed=5, token="tasks-token", clock=HandClock()) as emu:
        emu.clock.now += 2 * HOUR
        yield emu


def listing(emu, filter_=None, path="/tasks/paginate", size=1000):
    """Every task the emulator lists for `filter_`, following the page tokens."""
    out, token = [], None
    while True:
        page = httpx.post(emu.url + path, headers={"Authorization": emu.token},
                          json={"filter": filter_, "token": token, "maximumResults": size}).json()
        out += page["data"]
        token = page["nextToken"]
        if not page["isTruncated"]:
            return out


def ended(succeeded_range: str) -> int:
    """Instances in a range such as "0-4" (the emulator's instances end in start order)."""
    return 0 if not succeeded_range else int(succeeded_range.split("-")[-1]) + 1


def test_the_sdk_lists_and_reads_tasks_with_their_states_dates_and_instances(still):
    conn = connect(still)
    tasks = list(conn.all_tasks(summary=False))
    assert len(tasks) > 20 and {t.state for t in tasks} >= {"Success"}
    pools = still.cluster.pools
    for task in tasks:
        assert task.state in {"Submitted", "PartiallyExecuting", "FullyExecuting", "Success", "PendingCancel",
                              "Cancelled"}
        assert task.instancecount >= 1 and task._pool_uuid in pools
        assert task.creation_date.timestamp() <= still.clock.now
    done = next(t for t in tasks if t.state == "Success")
    again = conn.retrieve_task(done.uuid)
    truth = still.cluster.tasks.by_uuid[done.uuid]
    assert (again.state, again.instancecount, again.creation_date) == ("Success", truth.instances, done.creation_date)
    assert again.status.wall_time_sec > 0 and len(again.completed_instances) == truth.instances
    assert again.status.execution_time_sec == pytest.approx(truth.instances * truth.duration, abs=1e-3)
    summaries = list(conn.all_tasks(summary=True))
    assert {t.uuid for t in summaries} == {t.uuid for t in tasks}


def test_a_task_submitted_through_the_sdk_waits_runs_and_ends_on_the_pools_schedule(still):
    conn = connect(still)
    pool = conn.create_pool("workers", "docker-batch")
    pool.setup_elastic(minimum_total_slots=0, maximum_total_slots=4, resize_period=90)
    pool.submit()
    task = conn.create_task("job", pool, 3)
    task.constants["EMULATOR_DURATION_SECONDS"] = "600"
    task.submit()
    assert conn.retrieve_task(task.uuid).state == "Submitted"
    still.clock.now += 300         # slots start 60 s after the first tick
    running = conn.retrieve_task(task.uuid)
    assert (running.state, running.status.instance_count) == ("FullyExecuting", 3)
    still.clock.now += 900
    done = conn.retrieve_task(task.uuid)
    assert done.state == "Success" and done.end_date is not None
    wall = done.status.wall_time_sec
    assert wall == pytest.approx(600, abs=1e-3)
    assert done.creation_date.timestamp() < still.clock.now - 900


def test_running_and_queued_instances_of_tasks_add_up_to_each_pools_count(still):
    for uuid in list(still.cluster.pools):
        doc = httpx.get(f"{still.url}/pools/{uuid}", headers={"Authorization": still.token}).json()
        tasks = listing(still, {"operator": "Equal", "field": "PoolUuid", "value": uuid})
        assert all(t["poolUuid"] == uuid for t in tasks)
        open_instances = sum(t["instanceCount"] - ended(t["status"]["succeededRange"]) for t in tasks
                             if t["state"] not in TERMINAL)
        assert open_instances == doc["queuedOrRunningTaskInstancesCount"], doc["name"]


def test_filters_on_pools_and_state_and_pages_that_never_repeat(still):
    pools = list(still.cluster.pools)[:3]
    everything = listing(still)
    wanted = {t["uuid"] for t in everything if t["poolUuid"] in pools and t["state"] not in TERMINAL}
    live = {"operator": "And", "filters": [{"operator": "In", "field": "PoolUuid", "value": pools},
                                           {"operator": "NotIn", "field": "State", "value": sorted(TERMINAL)}]}
    paged = listing(still, live, size=2)
    assert [t["uuid"] for t in paged] == sorted(wanted, key=[t["uuid"] for t in everything].index)
    summaries = listing(still, live, path="/tasks/summaries/paginate")
    assert {t["uuid"] for t in summaries} == wanted and all("status" not in t for t in summaries)
    bad = httpx.post(still.url + "/tasks/paginate", headers={"Authorization": still.token},
                     json={"filter": {"operator": "Like", "field": "Name", "value": "x"}})
    assert bad.status_code == 400 and "Like" in bad.json()["message"]
    assert httpx.get(f"{still.url}/tasks/nope", headers={"Authorization": still.token}).status_code == 404


def test_closing_a_pool_cancels_its_queued_tasks_and_no_new_task_is_taken(still):
    conn = connect(still)
    pool = conn.create_pool("small", "docker-batch", 1)
    pool.submit()
    task = conn.create_task("big", pool, 5)
    task.constants["EMULATOR_DURATION_SECONDS"] = "1200"
    task.submit()
    still.clock.now += 300
    assert conn.retrieve_task(task.uuid).state == "PartiallyExecuting"
    pool.close()
    assert conn.retrieve_task(task.uuid).state == "PendingCancel"     # the started instance still runs
    still.clock.now += 1200
    assert conn.retrieve_task(task.uuid).state == "Cancelled"
    refused = httpx.post(still.url + "/tasks", headers={"Authorization": still.token},
                         json={"poolUuid": pool.uuid, "name": "late", "instanceCount": 1})
    assert refused.status_code == 400 and "not running" in refused.json()["message"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 500), st.integers(1, 3), st.floats(1, 300)), min_size=1, max_size=80),
       st.integers(1, 10), st.floats(100, 5000))
def test_finished_tasks_are_forgotten_after_the_retention_time_or_beyond_the_count(arrivals, most, retention):
    book, now = TaskBook(retention_seconds=retention, max_finished=most), 0.0
    for created, n, duration in sorted(arrivals):
        task = book.add("p", "docker-batch", created, n, duration)
        book.dispatched(task.key, created, n)
        now = max(now, created)
        book.prune(now)
        finished = [t for t in book.by_key.values() if t.end <= now]
        assert len(finished) <= most
        assert all(t.end > now - retention for t in finished)
    later = now + 10_000 + retention
    assert book.visible(later) == []


@pytest.mark.parametrize("filter_,pools", [
    (None, None),
    ({"operator": "Equal", "field": "PoolUuid", "value": "a"}, {"a"}),
    ({"operator": "In", "field": "pooluuid", "value": ["a", "b"]}, {"a", "b"}),
    ({"operator": "NotIn", "field": "PoolUuid", "value": ["a"]}, None),
    ({"operator": "Or", "filters": [{"operator": "Equal", "field": "PoolUuid", "value": "a"},
                                    {"operator": "Equal", "field": "State", "value": "Success"}]}, None),
    ({"operator": "And", "filters": [{"operator": "In", "field": "PoolUuid", "value": ["a", "b"]},
                                     {"operator": "Equal", "field": "PoolUuid", "value": "b"},
                                     {"operator": "NotIn", "field": "State", "value": ["Success"]}]}, {"b"}),
])
def test_a_listing_reads_only_the_pools_its_filter_is_limited_to(filter_, pools):
    assert named_pools(filter_) == pools
