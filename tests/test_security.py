"""Every reproduction of ../shared/findings/security.md (S1-S4), replayed against a running daemon over
real HTTP on 127.0.0.1: each must now fail safely, and nothing it tried may have changed anything."""
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.emulator import Emulator

SECRET = "TOKFILE-SECRET-5d1e8b2a"
ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec")
    (tmp / "token").write_text(SECRET + "\n")
    with Emulator.running(pools=6, seed=3, speed=600.0, token=SECRET) as emu:
        config, token = load_config(env={}, overrides={
            "api.url": emu.url, "api.token_file": str(tmp / "token"), "api.clock": "server",
            "store.path": str(tmp / "h.duckdb"), "http.port": 0, "poll.interval_seconds": 1,
            "poll.jitter_seconds": 0, "advisor.enabled": False, "sql.timeout_seconds": 3,
            "http.max_body_bytes": 65536, "http.request_timeout_seconds": 2})
        daemon = Daemon(config, token, admin_token=ADMIN)
        daemon.start()
        wait_for(lambda: events(daemon) > 0, "the first poll")
        yield daemon, emu, tmp
        daemon.stop()


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def sql(daemon, query, **kwargs):
    return httpx.post(f"{daemon.web.url}/sql", json={"query": query, **kwargs}, headers=AUTH, timeout=60)


def events(daemon):
    return daemon.store.frame("SELECT count(*) AS n FROM events").n[0]


@pytest.mark.parametrize("query", [
    "EXPLAIN ANALYZE INSERT INTO events (seq, type) VALUES (999999, 'forged')",
    "EXPLAIN ANALYZE DELETE FROM events",
    "EXPLAIN ANALYZE UPDATE polls SET outcome = 'forged'",
    "EXPLAIN ANALYZE CREATE TABLE pwn AS SELECT 1",
    "EXPLAIN ANALYZE DROP VIEW pool_current",
    "WITH x AS (DELETE FROM events WHERE seq <= 10 RETURNING seq) SELECT count(*) FROM x",
    "WITH x AS (INSERT INTO events (seq, type) VALUES (999998, 'forged') RETURNING seq) SELECT * FROM x",
    "WITH x AS (UPDATE polls SET outcome = 'x' RETURNING poll_id) SELECT * FROM x",
])
def test_writes_through_explain_analyze_and_dml_ctes_are_refused(running, query):
    daemon, _, _ = running
    before = daemon.store.frame("SELECT count(*) AS n, max(seq) AS top FROM events WHERE seq <= 10")
    answer = sql(daemon, query)
    assert answer.status_code == 400 and "read-only" in answer.json()["error"]
    after = daemon.store.frame("SELECT count(*) AS n, max(seq) AS top FROM events WHERE seq <= 10")
    assert before.equals(after)
    assert daemon.store.frame("SELECT count(*) AS n FROM events WHERE type = 'forged'").n[0] == 0
    assert daemon.store.frame("SELECT count(*) AS n FROM pool_current").n[0] > 0


def test_settings_cannot_be_changed_and_polls_go_on(running):
    daemon, _, _ = running
    before = sql(daemon, "SELECT current_setting('memory_limit')").json()["rows"]
    for query in ("EXPLAIN ANALYZE SET GLOBAL memory_limit='1MB'", "EXPLAIN ANALYZE RESET GLOBAL memory_limit",
                  "EXPLAIN ANALYZE SET GLOBAL enable_external_access = true", "SET threads = 1"):
        assert sql(daemon, query).status_code == 400
    assert sql(daemon, "SELECT current_setting('memory_limit')").json()["rows"] == before
    polls = daemon.store.frame("SELECT count(*) AS n FROM polls WHERE outcome = 'ok'").n[0]
    wait_for(lambda: daemon.store.frame("SELECT count(*) AS n FROM polls WHERE outcome = 'ok'").n[0] > polls,
             "a later successful poll")


def test_files_and_network_are_out_of_reach(running):
    daemon, emu, tmp = running
    pwned = tmp / "pwned.csv"
    for query in (f"EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{pwned}'",
                  f"SELECT content FROM read_text('{tmp / 'token'}')",
                  "SELECT content FROM read_text('/proc/self/environ')",
                  "SELECT * FROM read_csv('/etc/passwd', sep=':', header=false)",
                  f"SELECT * FROM read_blob('{tmp}/*')",
                  "SELECT count(*) FROM glob('/**')",
                  f"SELECT * FROM read_csv('{emu.url}/_emulator/state')",
                  "EXPLAIN ANALYZE INSTALL httpfs",
                  "EXPLAIN ANALYZE LOAD httpfs"):
        answer = sql(daemon, query)
        assert answer.status_code == 400, (query, answer.text)
        assert SECRET not in answer.text
    assert not pwned.exists()


def test_the_command_line_on_a_file_is_just_as_read_only(tmp_path):
    from tracker.store import Store

    db = tmp_path / "f.duckdb"
    Store(db).close()
    target = tmp_path / "ro_copy.csv"
    out = subprocess.run([sys.executable, "-m", "tracker", "sql", "--url", "", "--db", str(db),
                          f"EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{target}'"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and not target.exists()


@pytest.mark.parametrize("headers,status", [
    ({}, 401),                                                                    # no token
    ({"Authorization": "Bearer wrong-token-0123456789"}, 401),
    ({"Authorization": ADMIN}, 401),                                              # the SDK's bare form is not ours
    ({**AUTH, "Host": "evil.example:9108"}, 403),                                 # DNS rebinding
    ({**AUTH, "Origin": "http://evil.example"}, 403),                             # a foreign page
    ({**AUTH, "Origin": "null"}, 403),
    ({**AUTH, "Content-Type": "text/plain"}, 415),                                # a CORS-simple POST
])
def test_admin_endpoints_refuse_what_a_web_page_or_a_stranger_can_send(running, headers, status):
    daemon, emu, _ = running
    uuid = next(iter(daemon.store.views))
    before_doc = httpx.get(f"{emu.url}/pools/{uuid}", headers={"Authorization": SECRET}).json()
    before = daemon.store.frame("SELECT count(*) AS n FROM events WHERE type LIKE 'commit_%'").n[0]
    for path, body in (("/sql", b'{"query": "SELECT 1"}'), ("/apply", ('{"pool": "%s"}' % uuid).encode())):
        answer = httpx.post(f"{daemon.web.url}{path}", content=body,
                            headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert answer.status_code == status, (path, answer.text)
    if "Content-Type" not in headers:
        assert httpx.get(f"{daemon.web.url}/recommendations", headers=headers, timeout=10).status_code == status
    after_doc = httpx.get(f"{emu.url}/pools/{uuid}", headers={"Authorization": SECRET}).json()
    assert after_doc.get("elasticProperty") == before_doc.get("elasticProperty")
    assert daemon.store.frame("SELECT count(*) AS n FROM events WHERE type LIKE 'commit_%'").n[0] == before


def test_metrics_and_health_stay_open_to_prometheus(running):
    daemon, _, _ = running
    assert httpx.get(f"{daemon.web.url}/metrics", headers={"Host": "prometheus-host:9108"}).status_code == 200
    assert httpx.get(f"{daemon.web.url}/healthz").status_code == 200


def test_a_slow_query_is_interrupted_and_never_delays_metrics_or_health(running):
    daemon, _, _ = running
    slow = "SELECT count(*) FROM range(100000) a, range(200000) b WHERE (a.range * b.range) % 7 = 3"
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(r=sql(daemon, slow)))
    started = time.monotonic()
    worker.start()
    wait_for(lambda: daemon.sql_slots._value < daemon.config.sql.concurrency, "the query to start")
    timings = []
    while worker.is_alive() and len(timings) < 20:
        for path in ("/metrics", "/healthz"):
            t0 = time.perf_counter()
            assert httpx.get(f"{daemon.web.url}{path}", timeout=10).status_code == 200
            timings.append(time.perf_counter() - t0)
    worker.join()
    assert answer["r"].status_code == 400 and "time limit" in answer["r"].json()["error"]
    assert time.monotonic() - started < 30
    assert len(timings) >= 4 and statistics.median(timings) < 0.1, timings


def test_a_huge_result_is_streamed_cut_and_says_so(running):
    daemon, _, _ = running
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    answer = sql(daemon, "SELECT range AS x, repeat('a', 20) AS pad FROM range(100000000)")
    body = answer.json()
    assert answer.status_code == 200 and body["truncated"] is True and len(body["rows"]) == body["limit"] == 10_000
    assert process.memory_info().rss - before < 300 * 2**20
    capped = sql(daemon, "SELECT range FROM range(10)", limit=10**9).json()
    assert capped["limit"] == daemon.config.sql.max_rows and capped["truncated"] is False
    assert len(sql(daemon, "SELECT range FROM range(10)", limit=5).json()["rows"]) == 5


@pytest.mark.parametrize("path", ["/sql", "/apply"])
def test_an_oversized_body_is_refused_without_being_kept(running, path):
    daemon, _, _ = running
    big = b'{"query": "SELECT 1 --' + b"x" * (2 * 2**20) + b'"}'
    answer = httpx.post(f"{daemon.web.url}{path}", content=big, headers={**AUTH, "Content-Type": "application/json"},
                        timeout=30)
    assert answer.status_code == 413 and len(answer.content) < 1000


def test_a_client_too_slow_to_send_its_headers_is_cut_off(running):
    daemon, _, _ = running
    with socket.create_connection((daemon.web.host, daemon.web.port), timeout=30) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")   # and never the blank line
        started = time.monotonic()
        assert conn.recv(1024) == b""                                  # the server hangs up
    assert time.monotonic() - started < 20


def test_the_cli_says_when_rows_were_cut_and_takes_a_limit(running):
    daemon, _, tmp = running

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tracker", "sql", "--url", daemon.web.url, "--format", "csv",
                               *args], capture_output=True, text=True, env={**os.environ,
                               "POOL_TRACKER_ADMIN_TOKEN": ADMIN}, timeout=60)

    cut = cli("SELECT range FROM range(50)", "--limit", "20")
    assert cut.returncode == 0 and len(cut.stdout.splitlines()) == 21 and "cut at 20 rows" in cut.stderr
    whole = cli("SELECT range FROM range(50)", "--limit", "50")
    assert whole.returncode == 0 and len(whole.stdout.splitlines()) == 51 and whole.stderr == ""


def test_admin_endpoints_can_have_their_own_listener(tmp_path):
    with Emulator.running(pools=2, seed=1, speed=600.0, token="own-port-token") as emu:
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "store.path": str(tmp_path / "a.duckdb"), "http.port": 0, "http.admin_port": 0,
            "advisor.enabled": False})
        daemon = Daemon(config, emu.token, admin_token=ADMIN)
        daemon.start()
        try:
            assert httpx.post(f"{daemon.web.url}/sql", json={"query": "SELECT 1"}, headers=AUTH).status_code == 404
            assert httpx.get(f"{daemon.web.url}/metrics").status_code == 200
            ok = httpx.post(f"{daemon.admin_web.url}/sql", json={"query": "SELECT 1 AS one"}, headers=AUTH)
            assert ok.status_code == 200 and ok.json()["rows"] == [[1]]
        finally:
            daemon.stop()
