"""The daemon as a subprocess against the emulator on 127.0.0.1: polling, every fault mode, SIGTERM,
restart and kill -9, checked against the emulator's ground truth."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tracker.emulator import Emulator, Faults

TOKEN = "e2e-secret-token"
ADMIN = "e2e-admin-token-0123456789"


class SteppingClock:
    """Simulated time the test controls: runs 30x while `running`, frozen otherwise."""

    def __init__(self):
        self.now, self.running = 1_800_000_000.0, True
        self._stop = threading.Event()
        threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self):
        while not self._stop.wait(0.1):
            if self.running:
                self.now += 3.0

    def __call__(self):
        return self.now

    def close(self):
        self._stop.set()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaemonProcess:
    def __init__(self, emu, db, port, **extra_env):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        env = {**os.environ, "QARNOT_CLUSTER_URL": emu.url, "QARNOT_CLIENT_TOKEN": TOKEN, "POOL_TRACKER_ADMIN_TOKEN": ADMIN,
               "POOL_TRACKER_API_CLOCK": "server", "POOL_TRACKER_POLL_JITTER_SECONDS": "0",
               "POOL_TRACKER_POLL_FAILURE_BACKOFF_MAX_SECONDS": "1",
               "POOL_TRACKER_HTTP_HEALTH_MAX_FAILURE_SECONDS": "2", **extra_env}
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "run", "--db", str(db), "--interval", "1",
                                      "--metrics-port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
        self.wait_for(lambda: self.health() is not None, "the daemon's HTTP port")

    def health(self):
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2)
        except httpx.TransportError:
            return None

    def sql(self, query):
        answer = httpx.post(f"{self.url}/sql", json={"query": query}, timeout=10,
                            headers={"Authorization": f"Bearer {ADMIN}"}).json()
        return answer["rows"]

    def polls(self, outcome="ok"):
        return self.sql(f"SELECT count(*) FROM polls WHERE outcome = '{outcome}'")[0][0]

    def wait_for(self, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"daemon died: {self.proc.stderr.read()}"
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def terminate(self):
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self.log = self.proc.stderr.read()
        return code, time.monotonic() - start


@pytest.fixture
def emu():
    clock = SteppingClock()
    with Emulator.running(pools=15, seed=11, token=TOKEN, clock=clock) as emulator:
        emulator.sim = clock
        yield emulator
    clock.close()


def assert_matches_emulator(daemon, emu):
    """Freeze time, wait for a poll after it, and compare the tracker's projection with the emulator's."""
    emu.sim.running = False
    frozen_at = daemon.polls()
    daemon.wait_for(lambda: daemon.polls() >= frozen_at + 2, "two polls after freezing time")
    rows = daemon.sql("SELECT pool_uuid, state, running_instances, running_cores, queued_or_running FROM pool_current")
    tracked = {r[0]: tuple(r[1:]) for r in rows}
    truth = {p.uuid: (p.state, p.running_instances, p.running_cores, p.model.busy + p.model.queued)
             for p in emu.cluster.all_pools()}
    assert tracked == truth
    dupes = daemon.sql("""SELECT count(*) FROM (SELECT pool_uuid, state_to, lag(state_to) OVER
                          (PARTITION BY pool_uuid ORDER BY seq) AS prev FROM events WHERE type = 'state_changed')
                          WHERE state_to = prev""")[0][0]
    assert dupes == 0, "a transition was recorded twice"
    assert daemon.sql("SELECT count(*) FROM events WHERE type = 'pool_discovered'")[0][0] == len(truth)
    emu.sim.running = True


def test_polls_serves_health_and_sql_and_stops_on_sigterm(emu, tmp_path):
    daemon = DaemonProcess(emu, tmp_path / "t.duckdb", free_port())
    daemon.wait_for(lambda: daemon.polls() >= 3, "three successful polls")
    assert daemon.health().json()["healthy"] is True
    refused = httpx.post(f"{daemon.url}/sql", json={"query": "DROP TABLE events"},
                         headers={"Authorization": f"Bearer {ADMIN}"})
    assert refused.status_code == 400 and "read-only" in refused.json()["error"]
    assert_matches_emulator(daemon, emu)
    code, seconds = daemon.terminate()
    assert code == 0 and seconds < 10         # "within seconds", with room for a loaded machine
    assert "poll ok" in daemon.log and TOKEN not in daemon.log


def test_every_fault_mode_is_survived_recorded_and_recovered(emu, tmp_path):
    daemon = DaemonProcess(emu, tmp_path / "f.duckdb", free_port(), POOL_TRACKER_LOG_FORMAT="json")
    daemon.wait_for(lambda: daemon.polls() >= 2, "first polls")
    for faults, reason in [(Faults(server_errors=1.0), "unavailable"),
                           (Faults(rate_limited=1.0, retry_after_seconds=0.3), "unavailable"),
                           (Faults(dropped_connections=1.0), "unavailable"),
                           (Faults(malformed_json=1.0), "malformed"),
                           (Faults(truncated_pages=1.0), "malformed"),
                           (Faults(token_invalid_after=0), "unauthorized")]:
        emu.faults.set(faults)
        daemon.wait_for(lambda: daemon.polls(reason) >= 1, f"a poll recorded as {reason}")
        if reason == "unauthorized":
            daemon.wait_for(lambda: daemon.health().status_code == 503, "health to turn unhealthy")
            assert "unauthorized" in daemon.health().json()["reason"]
        emu.faults.set(Faults())
        ok = daemon.polls()
        daemon.wait_for(lambda: daemon.polls() > ok, f"recovery after {reason}")
        daemon.sql("SELECT 1")  # the HTTP side stayed up throughout
    emu.faults.set(Faults(latency_seconds=0.3))
    ok = daemon.polls()
    daemon.wait_for(lambda: daemon.polls() >= ok + 2, "polls through added latency")
    emu.faults.set(Faults())
    assert daemon.health().json()["healthy"] is True
    assert_matches_emulator(daemon, emu)
    code, _ = daemon.terminate()
    assert code == 0 and TOKEN not in daemon.log
    lines = [json.loads(line) for line in daemon.log.splitlines()]      # JSON on request: every line parses
    failed = {line["reason"] for line in lines if line["message"].startswith("poll failed")}
    assert failed == {"unavailable", "malformed", "unauthorized"}
    assert all({"pools", "events", "seconds"} <= line.keys() for line in lines if line["message"] == "poll ok")


def test_restart_and_repeated_kill_9_keep_the_history_consistent(emu, tmp_path):
    db, port, rng = tmp_path / "k.duckdb", free_port(), random.Random(4)
    for round_ in range(4):
        # Rounds alternate: polls that take 0.6 s (three pages behind a slow API), killed at a random moment
        # inside one, and polls at full speed killed wherever they are.
        emu.faults.set(Faults(latency_seconds=0.2) if round_ % 2 == 0 else Faults())
        daemon = DaemonProcess(emu, db, port, POOL_TRACKER_API_PAGE_SIZE="5")
        done = daemon.polls()
        daemon.wait_for(lambda: daemon.polls() >= done + 2, "polls before the kill")
        time.sleep(rng.uniform(0, 0.6))
        daemon.proc.kill()
        daemon.proc.wait()
    emu.faults.set(Faults())
    daemon = DaemonProcess(emu, db, port)
    daemon.wait_for(lambda: daemon.polls() >= 12, "polls after restarts")
    n, lo, hi, distinct = daemon.sql("SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM events")[0]
    assert (lo, hi, distinct) == (1, n, n)
    half_written = daemon.sql("""SELECT count(*) FROM (SELECT p.poll_id FROM polls p LEFT JOIN events e USING (poll_id)
                                 GROUP BY p.poll_id, p.events_written HAVING p.events_written <> count(e.seq))""")
    assert half_written[0][0] == 0
    assert_matches_emulator(daemon, emu)
    assert daemon.terminate()[0] == 0


def test_sigterm_while_the_api_hangs_exits_within_seconds_and_restarts_cleanly(emu, tmp_path):
    db, port = tmp_path / "h.duckdb", free_port()
    daemon = DaemonProcess(emu, db, port, POOL_TRACKER_COSTS_ENABLED="false",   # only polls make requests
                           POOL_TRACKER_TASKS_ENABLED="false")
    daemon.wait_for(lambda: daemon.polls() >= 2, "first polls")
    emu.faults.set(Faults(latency_seconds=8))
    daemon.wait_for(lambda: emu.faults.requests >= 1, "a poll waiting on the slow API")
    code, seconds = daemon.terminate()
    assert code == 0 and seconds < 10, (code, seconds, daemon.log)
    assert "pool-tracker stopped abandoned=1" in daemon.log and "poll failed" not in daemon.log
    emu.faults.set(Faults())
    daemon = DaemonProcess(emu, db, port)
    daemon.wait_for(lambda: daemon.polls() >= 4, "polls after the restart")
    assert daemon.sql("SELECT count(*) FROM polls WHERE outcome <> 'ok'")[0][0] == 0   # nothing half-recorded
    assert_matches_emulator(daemon, emu)
    assert daemon.terminate()[0] == 0


def start_error(tmp_path, *args, **env):
    """Start `pool-tracker run` where it cannot work: it must exit 2 with one line on stderr."""
    out = subprocess.run([sys.executable, "-m", "tracker", "run", *args], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QARNOT_CLIENT_TOKEN": TOKEN, "QARNOT_CLUSTER_URL": "http://127.0.0.1:9",
                              **env}, cwd=tmp_path, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and TOKEN not in out.stderr, out.stderr
    return out.stderr


def test_unwritable_or_corrupt_database_is_a_one_line_error_at_start(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "cannot open" in start_error(tmp_path, "--db", str(tmp_path / "file" / "x.duckdb"))
    (tmp_path / "corrupt.duckdb").write_bytes(b"not a database" * 100)
    assert "not a valid DuckDB database" in start_error(tmp_path, "--db", "corrupt.duckdb")


def test_other_start_problems_are_one_line_errors_naming_the_cause(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        message = start_error(tmp_path, "--metrics-port", str(busy.getsockname()[1]))
    assert "cannot listen on 127.0.0.1" in message and "--metrics-port" in message
    assert "no API token" in start_error(tmp_path, QARNOT_CLIENT_TOKEN="")
    assert not list(tmp_path.glob("*.duckdb"))          # nothing created for a daemon that cannot start
    assert "poll.interval_seconds" in start_error(tmp_path, "--interval", "0")
    assert "POOL_TRACKER_HTTP_PORT" in start_error(tmp_path, POOL_TRACKER_HTTP_PORT="99999")


def test_demo_starts_everything_says_where_and_stops_on_ctrl_c(tmp_path):
    demo = subprocess.Popen([sys.executable, "-m", "tracker", "demo", "--pools", "8", "--speed", "600", "--interval", "1",
                             "--metrics-port", "0", "--db", str(tmp_path / "demo.duckdb")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        banner = [demo.stdout.readline()]                 # the banner comes once everything is up
        while banner[-1] not in ("Ctrl-C stops.\n", ""):
            banner.append(demo.stdout.readline())
        health_url = next(line.split()[1] for line in banner if line.strip().startswith("health"))
        token_file = next(line.split()[2] for line in banner if line.strip().startswith("admin token"))
        admin = {"Authorization": f"Bearer {Path(token_file).read_text().strip()}"}
        assert "127.0.0.1:0" not in health_url
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = httpx.post(health_url.replace("/healthz", "/sql"), timeout=5, headers=admin,
                              json={"query": "SELECT count(*) FROM pool_current"}).json()["rows"]
            if rows[0][0] == 8:
                break
            time.sleep(0.2)
        assert rows[0][0] == 8 and httpx.get(health_url).json()["healthy"] is True
        assert "qarnot_pool_info" in httpx.get(health_url.replace("/healthz", "/metrics")).text
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=10)
    assert code == 0
