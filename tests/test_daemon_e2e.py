"""The daemon as a subprocess against the emulator on 127.0.0.1: polling, every fault mode, SIGTERM,
restart and kill -9, checked against the emulator's ground truth."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tracker.emulator import Emulator, Faults

TOKEN = "e2e-secret-token"


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
    def __init__(self, emu, db, port):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        env = {**os.environ, "QARNOT_CLUSTER_URL": emu.url, "QARNOT_CLIENT_TOKEN": TOKEN,
               "POOL_TRACKER_API_CLOCK": "server", "POOL_TRACKER_POLL_JITTER_SECONDS": "0",
               "POOL_TRACKER_POLL_FAILURE_BACKOFF_MAX_SECONDS": "1",
               "POOL_TRACKER_HTTP_HEALTH_MAX_FAILURE_SECONDS": "2"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "run", "--db", str(db), "--interval", "1",
                                      "--metrics-port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
        self.wait_for(lambda: self.health() is not None, "the daemon's HTTP port")

    def health(self):
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2)
        except httpx.TransportError:
            return None

    def sql(self, query):
        answer = httpx.post(f"{self.url}/sql", json={"query": query}, timeout=10).json()
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
    truth = {p.uuid: (p.state, p.model.ready, p.model.ready * p.cores_per_slot, p.model.busy + p.model.queued)
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
    refused = httpx.post(f"{daemon.url}/sql", json={"query": "DROP TABLE events"})
    assert refused.status_code == 400 and "read-only" in refused.json()["error"]
    assert_matches_emulator(daemon, emu)
    code, seconds = daemon.terminate()
    assert code == 0 and seconds < 5
    assert "poll ok" in daemon.log and TOKEN not in daemon.log


def test_every_fault_mode_is_survived_recorded_and_recovered(emu, tmp_path):
    daemon = DaemonProcess(emu, tmp_path / "f.duckdb", free_port())
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
    assert code == 0 and TOKEN not in daemon.log and "poll failed" in daemon.log


def test_restart_and_repeated_kill_9_keep_the_history_consistent(emu, tmp_path):
    db, port = tmp_path / "k.duckdb", free_port()
    for _ in range(3):
        daemon = DaemonProcess(emu, db, port)
        daemon.wait_for(lambda: daemon.polls() >= 2, "polls before the kill")
        time.sleep(0.5)
        daemon.proc.kill()
        daemon.proc.wait()
    daemon = DaemonProcess(emu, db, port)
    daemon.wait_for(lambda: daemon.polls() >= 8, "polls after restarts")
    n, lo, hi, distinct = daemon.sql("SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM events")[0]
    assert (lo, hi, distinct) == (1, n, n)
    half_written = daemon.sql("""SELECT count(*) FROM (SELECT p.poll_id FROM polls p LEFT JOIN events e USING (poll_id)
                                 GROUP BY p.poll_id, p.events_written HAVING p.events_written <> count(e.seq))""")
    assert half_written[0][0] == 0
    assert_matches_emulator(daemon, emu)
    assert daemon.terminate()[0] == 0


def test_unwritable_database_is_a_one_line_error_at_start(tmp_path):
    (tmp_path / "file").write_text("x")
    out = subprocess.run([sys.executable, "-m", "tracker", "run", "--db", str(tmp_path / "file" / "x.duckdb")],
                         env={**os.environ, "QARNOT_CLIENT_TOKEN": TOKEN}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot open" in out.stderr
