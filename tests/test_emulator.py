"""The emulator's own behaviour: lifecycle, elastic bounds, execution time, validation, selection."""
import httpx
import pytest

from policies.settings import ElasticSettings
from tracker.config import load_config
from tracker.daemon import Daemon
from helpers import HandClock
from tracker.emulator import Emulator
from tracker.emulator.cluster import Cluster
from tracker.emulator.documents import pool_document
from policies.workload import Workload

DAY = 86400.0


def test_pools_live_their_lifecycle_within_their_bounds():
    cluster = Cluster(lambda: 0.0)
    settings = ElasticSettings(1, 6, 1, 120, 0.5, 90)
    busy = cluster.create_pool("busy", "docker-batch", settings, at=0.0, workload=Workload("bursty", 1, 2.0),
                               close_at=DAY)
    failing = cluster.create_pool("failing", "docker-batch", settings, at=0.0, workload=Workload("steady", 2),
                                  fail_at=DAY / 2)
    seen_ready = set()
    for t in range(0, int(1.5 * DAY), 300):
        cluster.advance(busy, float(t))
        if busy.state not in ("Closing", "Closed"):
            seen_ready.add(busy.model.ready)
            assert busy.model.ready + busy.model.starting <= settings.max_total_slots
    assert min(seen_ready) >= 0 and max(seen_ready) == settings.max_total_slots
    states = [t.new for t in cluster.transitions(busy.uuid)]
    assert states[:3] == ["Submitted", "PartiallyDispatched", "FullyDispatched"]
    assert {"PartiallyExecuting", "FullyExecuting"} <= set(states) and states[-2:] == ["Closing", "Closed"]
    cluster.advance(failing, DAY)
    assert failing.state == "Failure" and failing.errors and failing.model.ready == 0
    assert failing.previous_state in ("PartiallyExecuting", "FullyExecuting")


def test_execution_time_is_the_integral_of_running_instances_and_cores_stay_exact():
    cluster = Cluster(lambda: 0.0)
    pool = cluster.create_pool("p", "docker-batch-large", ElasticSettings(4, 4, 0, 0, 1.0, 90), at=0.0,
                               slots_per_node=2)
    cluster.advance(pool, 3600.0)
    # four slots on two nodes ready after the 60 s start-up delay, 16 cores each
    assert pool.execution_seconds() == pytest.approx(2 * (3600 - 60))          # node-seconds
    assert pool.core_seconds() == pytest.approx(2 * 16 * (3600 - 60))
    doc = pool_document(pool, 3600.0)
    assert doc["executionTime"] == "01:58:00" and doc["status"]["executionTimeSec"] == 2 * (3600 - 60)


def test_invalid_elastic_settings_are_refused_with_a_message():
    with Emulator.running(pools=1, seed=1, token="t") as emu:
        uuid = next(iter(emu.cluster.pools))
        doc = httpx.get(f"{emu.url}/pools/{uuid}", headers={"Authorization": "t"}).json()
        doc["elasticProperty"]["rampResizeFactor"] = 1.5
        answer = httpx.put(f"{emu.url}/pools/{uuid}", json=doc, headers={"Authorization": "t"})
        assert answer.status_code == 400 and "resize_factor" in answer.json()["message"]
        doc["elasticProperty"].update(rampResizeFactor=0.5, resizePeriod=30)    # Qarnot's minimum is 90 s
        answer = httpx.put(f"{emu.url}/pools/{uuid}", json=doc, headers={"Authorization": "t"})
        assert answer.status_code == 400 and "at least 90 seconds" in answer.json()["message"]
        unknown = httpx.get(f"{emu.url}/pools/nope", headers={"Authorization": "t"})
        assert unknown.status_code == 404 and unknown.json()["message"]


def test_the_daemon_tracks_only_the_selected_pools(tmp_path):
    with Emulator.running(pools=16, seed=3, speed=60.0, token="t") as emu:
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "store.path": str(tmp_path / "s.duckdb"), "http.port": 0,
            "select.tags": ["bursty"], "select.labels": {"env": "prod"}})
        daemon = Daemon(config, emu.token)
        assert daemon.poll().ok
        expected = {u for u, p in emu.cluster.pools.items() if "bursty" in p.tags and p.labels["env"] == "prod"}
        assert expected and set(daemon.store.views) == expected
        daemon.store.close()


def api(emu):
    return httpx.Client(base_url=emu.url, headers={"Authorization": emu.token})


def listing(http, page_size, filter_=None, between_pages=lambda: None):
    """Every pool document, page by page as the SDK does; `between_pages` runs after the first page."""
    docs, token = [], None
    while True:
        answer = http.post("/pools/paginate", json={"filter": filter_, "token": token, "maximumResults": page_size})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        docs += page["data"]
        if not (page["isTruncated"] and page["nextToken"]):
            return docs
        token = page["nextToken"]
        if len(docs) == page_size:
            between_pages()


@pytest.mark.parametrize("filter_,named", [
    ({"operator": "LessThan", "field": "InstanceCount", "value": 3}, "LessThan"),
    ({"operator": "Like", "field": "Name", "value": "bur.*"}, "Like"),
    ({"operator": "Equal", "field": "Colour", "value": "red"}, "Colour"),
    ({"operator": "GreaterThan", "field": "CreationDate", "value": "2025-01-01T00:00:00Z"}, "GreaterThan"),
    ({"operator": "Equal", "field": "CreationDate", "value": "2025-01-01T00:00:00Z"}, "CreationDate"),
    ({"operator": "And", "filters": [{"operator": "Equal", "field": "Tags", "value": "bursty"},
                                     {"operator": "Xor", "field": "State", "value": "Closed"}]}, "Xor"),
    ({"operator": "NotIn", "field": "State", "value": "Closed"}, "list"),
])
def test_unsupported_filters_are_refused_naming_what_is_unsupported(filter_, named):
    with Emulator.running(pools=4, seed=1, token="t", clock=HandClock()) as emu, api(emu) as http:
        answer = http.post("/pools/paginate", json={"filter": filter_, "token": None, "maximumResults": 10})
        assert answer.status_code == 400 and named in answer.json()["message"]


def test_not_in_on_state_skips_finished_pools():
    clock = HandClock()
    with Emulator.running(pools=12, seed=7, token="t", clock=clock) as emu, api(emu) as http:
        finished = list(emu.cluster.pools)[:3]
        emu.cluster.close_pool(finished[0])
        clock.now += 3600
        live = listing(http, 5, {"operator": "NotIn", "field": "State", "value": ["Closed", "Failure"]})
        truth = {u for u, p in emu.cluster.pools.items() if p.state not in ("Closed", "Failure")}
        assert {d["uuid"] for d in live} == truth and finished[0] not in truth


@pytest.mark.parametrize("page_size", [1, 4, 5])
@pytest.mark.parametrize("victim", ["first seen", "last seen", "next unseen", "last"])
def test_a_deletion_between_pages_never_drops_another_pool(page_size, victim):
    clock = HandClock()
    with Emulator.running(pools=12, seed=7, token="t", clock=clock, delete_delay=30) as emu, api(emu) as http:
        order = [d["uuid"] for d in listing(http, 100)]
        doomed = {"first seen": order[0], "last seen": order[page_size - 1], "next unseen": order[page_size],
                  "last": order[-1]}[victim]

        def delete_and_wait():
            assert http.delete(f"/pools/{doomed}").status_code == 200
            clock.now += 31   # gone for good before the next page
        seen = [d["uuid"] for d in listing(http, page_size, between_pages=delete_and_wait)]
        assert doomed not in emu.cluster.pools
        expected = [u for u in order if u != doomed or order.index(u) < page_size]
        assert seen == expected


def test_a_deleted_pool_is_pending_delete_then_gone():
    clock = HandClock()
    with Emulator.running(pools=3, seed=2, token="t", clock=clock, delete_delay=45) as emu, api(emu) as http:
        clock.now += 600
        uuid = next(iter(emu.cluster.pools))
        assert http.delete(f"/pools/{uuid}").status_code == 200
        clock.now += 44
        doc = http.get(f"/pools/{uuid}").json()
        assert doc["state"] == "PendingDelete" and doc["endDate"]
        assert uuid in {d["uuid"] for d in listing(http, 10)}
        refused = http.put(f"/pools/{uuid}", json=doc)
        assert refused.status_code == 403 and "not running" in refused.json()["message"]
        clock.now += 1
        assert http.get(f"/pools/{uuid}").status_code == 404
        assert uuid not in {d["uuid"] for d in listing(http, 10)}
        truth = [(t.kind, t.new, t.at) for t in emu.cluster.ground_truth if t.pool == uuid][-2:]
        assert truth == [("state", "PendingDelete", clock.now - 45), ("deleted", None, clock.now)]


def test_commit_and_close_of_a_closed_pool_answer_403_with_a_message():
    clock = HandClock()
    with Emulator.running(pools=3, seed=2, token="t", clock=clock) as emu, api(emu) as http:
        uuid = next(u for u, p in emu.cluster.pools.items() if p.settings.is_elastic)
        assert http.post(f"/pools/{uuid}/close").status_code == 200
        clock.now += 3600
        doc = http.get(f"/pools/{uuid}").json()
        assert doc["state"] == "Closed"
        for answer in (http.put(f"/pools/{uuid}", json=doc), http.post(f"/pools/{uuid}/close")):
            assert answer.status_code == 403
            assert uuid in answer.json()["message"] and "not running" in answer.json()["message"]


def test_sizes_agree_with_the_running_nodes_and_the_ground_truth():
    clock = HandClock()
    with Emulator.running(pools=24, seed=4, token="t", clock=clock) as emu, api(emu) as http:
        start = clock.now
        for _ in range(6):
            clock.now += 1200
            for doc in listing(http, 10):
                pool = emu.cluster.pools[doc["uuid"]]
                per_node, model = doc["multiSlotsSettings"]["slotsPerNode"], pool.model
                nodes = doc["runningInstanceCount"]
                assert nodes == -(-model.ready // per_node)          # a node runs while any slot does
                assert doc["runningCoreCount"] == nodes * pool.cores_per_node
                assert model.busy <= nodes * per_node
                elastic, scaling = doc["elasticProperty"], doc["scaling"]
                capacity = (elastic["maxTotalSlots"] if elastic["isElastic"] else pool.settings.max_total_slots)
                if scaling is not None:   # the largest slot count any policy allows
                    capacity = max(p.get("slotsCount", p.get("maxTotalSlots")) for p in scaling["policies"])
                    assert scaling["activePolicyName"] == pool.scaling.policy_at(clock.now).name
                assert doc["totalSlotCapacity"] == capacity
                assert doc["poolUsage"] == pytest.approx(model.busy / capacity, abs=1e-4)
                infos = doc["status"]["runningInstancesInfo"]["perRunningInstanceInfo"]
                assert all(i["coreCount"] == pool.cores_per_node for i in infos)
                assert sum(i["phase"] == "execution" for i in infos) == min(-(-model.busy // per_node), 8)
        kinds = {(p.settings.is_elastic, p.slots_per_node > 1, p.scaling is not None)
                 for p in emu.cluster.pools.values()}
        assert {(True, False, False), (True, True, False), (False, False, False), (False, False, True)} <= kinds
        for uuid, pool in emu.cluster.pools.items():   # core-seconds = integral of the "cores" ground truth
            cores, last, total = 0, None, 0.0
            for t in emu.cluster.ground_truth:
                if t.pool == uuid and t.kind == "cores":
                    total += cores * (t.at - last) if last is not None else 0.0
                    cores, last = t.new, t.at
            total += cores * (clock.now - last) if last is not None else 0.0
            assert pool.core_seconds() == pytest.approx(total, rel=1e-9, abs=1e-6)
            assert pool.execution_seconds() == pytest.approx(total / pool.cores_per_node, rel=1e-9, abs=1e-6)
