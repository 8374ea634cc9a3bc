"""Real task data: parsing task documents, deriving their events, and the tasks collector against the
emulator (real HTTP, a real DuckDB file), whose own task timings are the truth."""
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, strategies as st

from helpers import HandClock
from tracker.api import QarnotClient
from tracker.collect_tasks import TaskCollector
from tracker.config import Tasks
from tracker.emulator import Emulator
from tracker.events import PoolView
from tracker.parse import BadDocument
from tracker.poll import poll_once
from tracker.store import Store
from tracker.tasks import PHASES, parse_task, task_events

T0 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
TOKEN = "tasks-api-token-0123"


def doc(**over):
    base = {"uuid": "t1", "poolUuid": "p1", "name": "render", "state": "Success", "instanceCount": 2,
            "creationDate": "2026-03-02T12:00:00Z", "endDate": "2026-03-02T12:20:00.5Z",
            "wallTime": "00:15:00", "executionTime": "00:30:00",
            "status": {"wallTimeSec": 900.5, "executionTimeSec": 1800.0}}
    return {**base, **over}


def test_a_finished_task_gives_its_real_wait_and_run_time():
    task = parse_task(doc())
    assert task.started == T0 + timedelta(minutes=5)          # endDate - wall time
    assert (task.ended, task.instances, task.instance_seconds) == (T0 + timedelta(minutes=20, seconds=0.5), 2, 1800.0)
    kinds = [e.type for e in task_events(task, None, T0)]
    assert kinds == list(PHASES)
    finished = task_events(task, "task_started", T0)
    assert [e.type for e in finished] == ["task_finished"] and finished[0].payload["run_seconds"] == 900.0


def test_a_running_task_started_a_wall_time_before_its_last_update():
    task = parse_task(doc(state="FullyExecuting", endDate=None,
                          status={"wallTimeSec": 60.0, "lastUpdateTimestamp": "2026-03-02T12:10:00Z"}))
    assert task.started == T0 + timedelta(minutes=9) and task.ended is None and task.phase == "task_started"


def test_a_task_cancelled_before_it_ran_has_no_start():
    task = parse_task(doc(state="Cancelled", wallTime="00:00:00", executionTime="00:00:00", status=None))
    assert task.started is None and [e.type for e in task_events(task, None, T0)] == ["task_submitted", "task_finished"]


@pytest.mark.parametrize("bad,named", [
    ({"uuid": None}, "uuid"), ({"poolUuid": 7}, "poolUuid"), ({"creationDate": "yesterday"}, "creationDate"),
    ({"instanceCount": 0}, "instanceCount"), ({"instanceCount": 1.5}, "instanceCount"),
    ({"endDate": None, "stateTransitionTime": None}, "endDate"), ({"status": {"wallTimeSec": -1}}, "wallTimeSec"),
    ({"status": {}, "wallTime": "soon"}, "timespan"),
])
def test_unreadable_task_documents_name_the_field(bad, named):
    with pytest.raises(BadDocument, match=named):
        parse_task(doc(**bad))


@given(st.sampled_from([None, *PHASES]), st.sampled_from(["Submitted", "FullyExecuting", "Success", "Cancelled"]))
def test_each_phase_is_recorded_once_whatever_was_recorded_before(recorded, state):
    task = parse_task(doc(state=state, status={"wallTimeSec": 10.0, "executionTimeSec": 20.0,
                                                "lastUpdateTimestamp": "2026-03-02T12:30:00Z"}))
    first = task_events(task, recorded, T0)
    done = PHASES[:PHASES.index(recorded) + 1] if recorded else ()
    assert not {e.type for e in first} & set(done)
    assert task_events(task, first[-1].type if first else recorded, T0) == []


class Tracked:
    """The emulator on a hand clock, the tracker's poll and tasks collector on a real DuckDB file."""

    def __init__(self, emu, path, counting=None):
        self.emu, self.path = emu, path
        self.client = QarnotClient(emu.url, emu.token, transport=counting)
        self.store = Store(path)
        self.tasks = TaskCollector(self.client, self.store, Tasks(pools_per_request=2))

    def now(self):
        return datetime.fromtimestamp(self.emu.clock.now, timezone.utc)

    def run(self, seconds, step=30.0):
        for _ in range(int(seconds // step)):
            self.emu.clock.now += step
            poll_once(self.client, self.store, clock=self.now)
            result = self.tasks.collect(self.now())
        return result


@pytest.fixture
def tracked(tmp_path):
    with Emulator.running(pools=5, seed=11, token=TOKEN, clock=HandClock()) as emu:
        tracked = Tracked(emu, tmp_path / "h.duckdb")
        yield tracked
        tracked.store.close()


def test_recorded_tasks_match_the_emulators_own_timings(tracked):
    tracked.run(2 * 3600)
    rows = tracked.store.frame("SELECT * FROM tasks")
    book = tracked.emu.cluster.tasks
    ended = [t for t in book.visible(tracked.emu.clock.now) if t.end is not None and t.end <= tracked.emu.clock.now]
    assert len(ended) > 50
    by_uuid = rows.set_index("task_uuid")
    for truth in ended:
        row = by_uuid.loc[truth.uuid]
        assert row.state == "Success" and row.instances == truth.instances
        assert row.created.replace(tzinfo=timezone.utc).timestamp() == pytest.approx(truth.created, abs=1e-5)
        assert row.wait_seconds == pytest.approx(truth.starts[0][0] - truth.created, abs=1e-3)
        assert row.run_seconds == pytest.approx(truth.duration, abs=1e-3)
    waiting = rows[rows.state == "Waiting"]
    assert all(not book.by_uuid[u].starts for u in waiting.task_uuid)


def test_nothing_new_is_recorded_twice_not_even_after_a_restart(tracked, tmp_path):
    tracked.run(3600)
    before = tracked.store.frame("SELECT count(*) AS n FROM events").n[0]
    assert tracked.tasks.collect(tracked.now()).events == 0
    tracked.store.close()
    tracked.store = Store(tracked.path)
    tracked.tasks = TaskCollector(tracked.client, tracked.store, Tasks(sweep_interval_seconds=60))
    tracked.tasks.collect(tracked.now())                 # a sweep: every task again, ended ones too
    assert tracked.store.frame("SELECT count(*) AS n FROM events").n[0] == before
    dupes = tracked.store.frame("SELECT payload->>'$.task' AS t, type, count(*) AS n FROM events "
                                "WHERE type LIKE 'task_%' GROUP BY ALL HAVING n > 1")
    assert dupes.empty


def test_the_listing_costs_a_request_per_batch_of_pools_not_per_pool(tmp_path):
    paths = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request):
            paths.append(request.url.path)
            return super().handle_request(request)

    with Emulator.running(pools=9, seed=2, token=TOKEN, clock=HandClock()) as emu:
        tracked = Tracked(emu, tmp_path / "h.duckdb", Counting())
        tracked.run(600)
        paths.clear()
        result = tracked.run(30)
        listings = paths.count("/tasks/paginate")
        reads = sum(p.startswith("/tasks/") and p != "/tasks/paginate" for p in paths)
        assert listings == 5                               # 9 live pools, 2 per request
        assert reads <= result.fetched and reads < 9
        tracked.store.close()


def test_a_malformed_task_is_quarantined_once_and_costs_no_other_task(tmp_path):
    good = doc(uuid="good")
    bad = doc(uuid="bad", creationDate="not a date")

    def api(request):
        if request.url.path == "/tasks/paginate":
            return httpx.Response(200, json={"data": [bad, good], "nextToken": None, "isTruncated": False})
        return httpx.Response(404, json={"message": "not found"})

    store = Store(tmp_path / "h.duckdb")
    client = QarnotClient("http://127.0.0.1:9", TOKEN, transport=httpx.MockTransport(api))
    store.views["p1"] = PoolView("p1", state="FullyExecuting")     # a live pool, as a poll would have left it
    collector = TaskCollector(client, store, Tasks())
    collector.collect(T0)
    collector.collect(T0 + timedelta(minutes=1))
    rows = store.frame("SELECT type, payload->>'$.task' AS task, payload->>'$.reason' AS reason FROM events")
    assert sorted(rows.type) == ["task_finished", "task_started", "task_submitted", "task_unreadable"]
    reason = rows[rows.type == "task_unreadable"].reason.iloc[0]
    assert "creationDate" in reason and "\n" not in reason and TOKEN not in reason
    store.close()


def test_the_daemon_collects_tasks_beside_its_polls_and_counts_them(tmp_path):
    from tracker.config import load_config
    from tracker.daemon import Daemon

    with Emulator.running(pools=3, seed=11, token=TOKEN, clock=HandClock()) as emu:
        config, _ = load_config(env={}, overrides={"api.url": emu.url, "api.clock": "server", "http.port": 0,
                                                   "store.path": str(tmp_path / "d.duckdb"), "advisor.enabled": False})
        daemon = Daemon(config, TOKEN, admin_token="x" * 32)
        try:
            for _ in range(120):
                emu.clock.now += 30
                assert daemon.poll().ok
                daemon.collect("tasks")
            recorded = daemon.store.frame("SELECT count(*) AS n FROM tasks WHERE state = 'Success'").n[0]
            ended = sum(1 for t in emu.cluster.tasks.visible(emu.clock.now) if t.end and t.end <= emu.clock.now)
            assert recorded == ended > 0
            assert b'pool_tracker_figures_collected_total{outcome="ok",what="tasks"}' in daemon.metrics.exposition()[0]
        finally:
            daemon.store.close()
            daemon.client.close()
