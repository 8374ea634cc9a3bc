"""The emulator's own behaviour: lifecycle, elastic bounds, execution time, validation, selection."""
import httpx
import pytest

from policies.settings import ElasticSettings
from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.emulator import Emulator
from tracker.emulator.cluster import Cluster
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


def test_execution_time_is_the_integral_of_running_cores():
    cluster = Cluster(lambda: 0.0)
    pool = cluster.create_pool("p", "docker-batch-large", ElasticSettings(2, 2, 0, 0, 1.0, 90), at=0.0)
    cluster.advance(pool, 3600.0)
    # two slots ready after the 60 s start-up delay, 16 cores each
    assert pool.execution_seconds() == pytest.approx(2 * 16 * (3600 - 60))


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
