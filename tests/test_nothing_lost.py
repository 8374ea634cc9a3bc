"""Nothing lost in silence: poison pool documents, failed writes, a vanished database, a clock behind the
log, an API that echoes the token. Each case runs the real poll/store/daemon (DuckDB files, HTTP on
127.0.0.1) and then checks the database itself."""
import copy
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import duckdb
import httpx
import pytest
from hypothesis import given, settings, strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracker.api import QarnotClient, RetryPolicy, _parse
from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.derive import derive_poll
from tracker.emulator import Emulator
from tracker.events import apply
from tracker.poll import poll_once
from tracker.serve import ThreadedServer
from tracker.snapshot import Unreadable
from tracker.store import Store

TOKEN = "fake-api-token-0123"
T0 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)


def doc(uuid, cores=4, state="FullyExecuting", **fields):
    return {"uuid": uuid, "name": f"pool-{uuid}", "state": state, "runningCoreCount": cores,
            "runningInstanceCount": cores // 4 if isinstance(cores, int) else 1, "queuedOrRunningTaskInstancesCount": 1,
            "stateTransitionTime": "2026-03-01T00:00:00Z", "executionTime": "01:00:00", **fields}


class FakeApi:
    """A real HTTP server serving pool pages as the API does, from documents a test edits between polls."""

    def __init__(self):
        self.docs: list = []
        self.status, self.message = 200, ""

        async def paginate(request: Request):
            if request.headers.get("authorization") != TOKEN or self.status != 200:
                return JSONResponse({"message": self.message or "unauthorized"}, status_code=self.status or 401)
            return JSONResponse({"data": self.docs, "isTruncated": False, "nextToken": None})

        self.server = ThreadedServer(Starlette(routes=[Route("/pools/paginate", paginate, methods=["POST"])]))

    def __enter__(self):
        self.server.start()
        self.url = self.server.url
        return self

    def __exit__(self, *exc):
        self.server.stop()


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def client(url):
    return QarnotClient(url, TOKEN, retry=RetryPolicy(max_attempts=1))


def types(store, uuid=None):
    where = f"WHERE pool_uuid = '{uuid}'" if uuid else ""
    return store.frame(f"SELECT type FROM events {where} ORDER BY seq").type.tolist()


def test_one_bad_pool_is_quarantined_and_costs_the_others_nothing(api, tmp_path):
    store = Store(tmp_path / "h.duckdb")
    at = iter(T0 + timedelta(minutes=m) for m in range(100))
    poll = lambda: poll_once(client(api.url), store, clock=lambda: next(at))  # noqa: E731
    api.docs = [doc("a"), doc("b")]
    assert poll().ok
    api.docs = [doc("a", cores="x"), doc("b", cores=8), doc("c", queuedOrRunningTaskInstancesCount=10**30)]
    result = poll()
    assert result.ok and result.unreadable == 2 and "quarantined" in result.message
    assert types(store, "b")[-1] == "cores_changed"                  # the good pool's change is kept
    assert types(store, "a")[-1] == "pool_unreadable" and "pool_vanished" not in types(store, "a")
    reason = store.frame("SELECT payload->>'$.reason' AS r FROM events WHERE type = 'pool_unreadable' "
                         "AND pool_uuid = 'a'").r[0]
    assert "runningCoreCount" in reason
    assert poll().ok and types(store).count("pool_unreadable") == 2   # same reason: not recorded again
    api.docs = [doc("a", cores=12), doc("b", cores=8), doc("c")]
    assert poll().ok
    history_a = types(store, "a")
    assert "cores_changed" in history_a[history_a.index("pool_readable"):]
    assert types(store, "c")[:3] == ["pool_unreadable", "pool_readable", "pool_discovered"]  # first readable sight
    assert store.views["a"].running_cores == 12 and store.views["a"].unreadable is None
    seqs = store.frame("SELECT seq FROM events ORDER BY seq").seq.tolist()
    assert seqs == list(range(1, len(seqs) + 1))
    store.close()


@pytest.mark.parametrize("poison", [
    {"queuedOrRunningTaskInstancesCount": 18446744073709551615},       # S5b: beyond int64
    {"elasticProperty": {"isElastic": True, "maxTotalSlots": "abc"}},   # S5c: would break /metrics
    {"stateTransitionTime": "9999-12-31T23:59:59-01:00", "state": "Closing"},   # S5d: year 10000 in UTC
    {"executionTime": "00:00:nan"},                                     # S9e
    {"runningCoreCount": -4},
])
def test_poison_documents_never_break_the_store_metrics_or_the_next_start(api, tmp_path, poison):
    api.docs = [doc("good"), {**doc("bad"), **poison}]
    config, _ = load_config(env={}, overrides={"api.url": api.url, "store.path": str(tmp_path / "p.duckdb"),
                                                "http.port": 0, "advisor.enabled": False})
    daemon = Daemon(config, TOKEN, admin_token="x" * 32)
    assert daemon.poll().ok and daemon.poll().ok
    body, _ = daemon.metrics.exposition()
    assert b'qarnot_pool_info{pool_uuid="good"' in body and b"pool_tracker_pools_quarantined 1.0" in body
    daemon.store.close()
    reopened = Store(tmp_path / "p.duckdb")                            # the next start rebuilds its views
    assert set(reopened.views) == {"good", "bad"} and reopened.views["bad"].unreadable
    reopened.close()


def test_rows_an_older_version_wrote_badly_are_skipped_on_replay(tmp_path):
    path = tmp_path / "old.duckdb"
    store = Store(path)
    store.append_poll(T0, T0, derive_poll({}, [_parse(doc("a"))], T0), pools_seen=1)
    store.close()
    raw = duckdb.connect(str(path))
    raw.execute("INSERT INTO events (seq, pool_uuid, type, occurred_at, recorded_at, state_from, state_to) VALUES "
                "(100, 'a', 'state_changed', '10000-01-01 00:59:59', '2026-03-02 13:00:00', 'Submitted', 'Closing')")
    raw.close()
    reopened = Store(path)
    assert reopened.replay_skipped == 1 and reopened.views["a"].state == "FullyExecuting"
    reopened.close()


def test_a_clock_behind_the_log_writes_nothing_backwards(api, tmp_path):
    store = Store(tmp_path / "c.duckdb")
    api.docs = [doc("a")]
    assert poll_once(client(api.url), store, clock=lambda: T0).ok
    api.docs = [doc("a", cores=8)]
    behind = poll_once(client(api.url), store, clock=lambda: T0 - timedelta(hours=1))
    assert behind.outcome == "clock_behind" and "behind" in behind.message
    assert types(store) == ["pool_discovered", "state_changed", "instances_changed", "cores_changed",
                            "queued_changed"]
    assert poll_once(client(api.url), store, clock=lambda: T0 + timedelta(minutes=1)).ok
    times = store.frame("SELECT recorded_at FROM events ORDER BY seq").recorded_at.tolist()
    assert times == sorted(times)
    assert store.frame("SELECT min(finished_at) >= max(finished_at) - INTERVAL 1 MINUTE AS ok FROM polls").ok[0]
    store.close()


def test_a_transition_time_before_the_last_one_or_in_the_future_lasts_no_negative_time(api, tmp_path):
    store = Store(tmp_path / "t.duckdb")
    api.docs = [doc("a", state="Submitted", stateTransitionTime="2026-03-02T11:00:00Z")]
    poll_once(client(api.url), store, clock=lambda: T0)
    api.docs = [doc("a", state="FullyExecuting", stateTransitionTime="2026-03-01T00:00:00Z")]   # before the last
    poll_once(client(api.url), store, clock=lambda: T0 + timedelta(minutes=1))
    api.docs = [doc("a", state="Closing", stateTransitionTime="2090-01-01T00:00:00Z")]          # in the future
    poll_once(client(api.url), store, clock=lambda: T0 + timedelta(minutes=2))
    assert store.frame("SELECT min(seconds) AS s FROM state_intervals").s[0] >= 0
    assert store.views["a"].state_since <= T0 + timedelta(minutes=2)
    store.close()


def test_an_api_error_echoing_the_token_reaches_neither_the_database_nor_health(api, tmp_path):
    api.status, api.message = 401, f"invalid token {TOKEN}"
    config, _ = load_config(env={}, overrides={"api.url": api.url, "store.path": str(tmp_path / "e.duckdb"),
                                                "http.port": 0, "advisor.enabled": False,
                                                "http.health_max_failure_seconds": 1})
    daemon = Daemon(config, TOKEN, admin_token="x" * 32)
    assert daemon.poll().outcome == "unauthorized"
    daemon.health.failing_since -= timedelta(seconds=5)
    healthy, reason = daemon.health.status(datetime.now(timezone.utc))
    message = daemon.store.frame("SELECT message FROM polls").message[0]
    assert not healthy and TOKEN not in reason and TOKEN not in message and "<redacted>" in message
    daemon.store.close()


@given(st.lists(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3), st.booleans()), max_size=4),
                min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_good_documents_are_never_lost_whatever_bad_ones_come_with_them(polls):
    """Random sequences of good and bad documents: after every poll, every pool whose document was good
    shows exactly what that document said, and a pool listed with a bad document never vanishes."""
    views, now = {}, T0
    for listing in polls:
        now += timedelta(minutes=1)
        docs = {uuid: doc(uuid, cores=4 * cores) if good else doc(uuid, cores="bad")
                for uuid, cores, good in listing}
        parsed = [_parse(copy.deepcopy(d)) for d in docs.values()]
        events = derive_poll(views, [p for p in parsed if not isinstance(p, Unreadable)], now,
                             [p for p in parsed if isinstance(p, Unreadable)])
        for event in events:
            views = {**views, event.pool_uuid: apply(views.get(event.pool_uuid), event)}
            views = {k: v for k, v in views.items() if v is not None}
        for uuid, d in docs.items():
            assert uuid in views
            if isinstance(d["runningCoreCount"], int):
                assert views[uuid].running_cores == d["runningCoreCount"] and views[uuid].unreadable is None
            else:
                assert views[uuid].unreadable is not None
        assert set(views) == set(docs)


# -- the daemon as a process: a write that fails, a database that vanishes -----------------------------

def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, emu, db):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "QARNOT_CLUSTER_URL": emu.url, "QARNOT_CLIENT_TOKEN": emu.token,
               "POOL_TRACKER_API_CLOCK": "server", "POOL_TRACKER_POLL_JITTER_SECONDS": "0",
               "POOL_TRACKER_POLL_FAILURE_BACKOFF_MAX_SECONDS": "1", "POOL_TRACKER_ADVISOR_ENABLED": "false"}
        # Python does not ignore SIGXFSZ: without this, a write past the file-size limit kills the process
        # instead of failing with "File too large", which is what a full disk looks like to DuckDB.
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "run", "--db", str(db), "--interval", "1",
                                      "--metrics-port", str(self.port)], env=env, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))

    def health(self):
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).json()
        except (httpx.TransportError, ValueError):
            return None

    def wait_for(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)


def test_a_write_that_fails_is_a_failed_poll_with_its_reason_then_polls_resume(tmp_path):
    db = tmp_path / "full.duckdb"
    with Emulator.running(pools=6, seed=5, speed=600.0, token="full-disk-token") as emu:
        daemon = Proc(emu, db)
        try:
            daemon.wait_for(lambda: (daemon.health() or {}).get("reason", "").startswith("last successful"),
                            "a successful poll")
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (1, hard))      # "the disk is full"
            daemon.wait_for(lambda: not (daemon.health() or {"healthy": True})["healthy"], "health to turn 503")
            reason = daemon.health()["reason"]
            assert "cannot record polls" in reason and "File too large" in reason, reason
            resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))   # space is back
            daemon.wait_for(lambda: (daemon.health() or {}).get("healthy"), "health to recover")
        finally:
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=20) == 0
    log = daemon.proc.stderr.read()
    assert "File too large" in log and "cannot rollback" not in log
    store = Store(db, read_only=True)
    seqs = store.frame("SELECT seq FROM events ORDER BY seq").seq.tolist()
    assert seqs == list(range(1, len(seqs) + 1)) and store.frame("SELECT count(*) AS n FROM polls").n[0] >= 2
    store.close()


def test_a_database_deleted_under_the_daemon_stops_it_with_one_line(tmp_path):
    folder = tmp_path / "db"
    with Emulator.running(pools=4, seed=6, speed=600.0, token="deleted-db-token") as emu:
        daemon = Proc(emu, folder / "h.duckdb")
        daemon.wait_for(lambda: (daemon.health() or {}).get("reason", "").startswith("last successful"),
                        "a successful poll")
        shutil.rmtree(folder)
        code = daemon.proc.wait(timeout=60)
    lines = daemon.proc.stderr.read().strip().splitlines()
    assert code == 2 and lines[-1].startswith("pool-tracker: ") and "deleted" in lines[-1], lines[-3:]


def ok_polls(exposition: str) -> float:
    match = re.search(r'^pool_tracker_polls_total\{outcome="ok"\} (\S+)$', exposition, re.M)
    return float(match.group(1)) if match else 0.0


def test_running_the_demo_again_on_its_file_never_rewinds_time(tmp_path):
    db = tmp_path / "demo.duckdb"

    def demo_until_polled(polls):
        demo = subprocess.Popen([sys.executable, "-m", "tracker", "demo", "--pools", "5", "--speed", "600",
                                 "--interval", "1", "--metrics-port", "0", "--db", str(db)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            banner = [demo.stdout.readline()]
            while banner[-1] not in ("Ctrl-C stops.\n", ""):
                banner.append(demo.stdout.readline())
            health = next(line.split()[1] for line in banner if line.strip().startswith("health"))
            metrics = health.replace("/healthz", "/metrics")
            deadline = time.monotonic() + 60
            while ok_polls(httpx.get(metrics).text) < polls:
                assert time.monotonic() < deadline, "the demo did not poll"
                time.sleep(0.1)
        finally:
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=20) == 0
    demo_until_polled(3)
    demo_until_polled(3)
    store = Store(db, read_only=True)
    times = store.frame("SELECT recorded_at FROM events ORDER BY seq").recorded_at.tolist()
    assert times == sorted(times) and store.frame("SELECT count(*) AS n FROM polls").n[0] >= 6
    assert store.frame("SELECT min(seconds) AS s FROM state_intervals").s[0] >= 0
    store.close()
