"""Client commands find the daemon, its admin token and its history exactly as the daemon does (config file,
POOL_TRACKER_* environment, flags), and every way of not finding it is one line naming what was tried."""
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.derive import derive_poll
from tracker.snapshot import PoolSnapshot
from tracker.store import Store

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_TRACKER_", "QARNOT_"))}
    return subprocess.run([sys.executable, "-m", "tracker", *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **(env or {})}, cwd=os.environ.get("TMPDIR", "/tmp"))


def seeded(path):
    store = Store(path)
    snaps = [PoolSnapshot("0b5e-uuid-render", "render", "FullyExecuting", running_core_count=8),
             PoolSnapshot("77aa-uuid-train", "train", "Failure", errors=("boom",))]
    store.append_poll(T0, T0, derive_poll({}, snaps, T0), pools_seen=2)
    store.close()


@pytest.fixture(params=["one port", "admin port"])
def daemon(request, tmp_path):
    """A daemon holding its history, configured by a file in a folder the commands are not run from."""
    db = tmp_path / "var" / "history.duckdb"
    db.parent.mkdir()
    seeded(db)
    port, admin = free_port(), free_port()
    conf = tmp_path / "pool-tracker.toml"
    conf.write_text(f"[store]\npath = '{db}'\n[http]\nport = {port}\n"
                    + (f"admin_port = {admin}\n" if request.param == "admin port" else "")
                    + "[api]\nurl = 'http://127.0.0.1:9'\n")
    config, _ = load_config(conf, env={})
    d = Daemon(config, "test-token-1")
    d.web.start()
    if d.admin_web is not None:
        d.admin_web.start()
    try:
        yield d, conf, db, port
    finally:
        if d.admin_web is not None:
            d.admin_web.stop()
        d.web.stop()
        d.store.close()


QUERY = "SELECT name FROM pool_current ORDER BY name"


def test_sql_and_recommend_reach_the_daemon_of_the_config_file(daemon):
    _, conf, _, _ = daemon
    out = cli("sql", QUERY, "--config", str(conf), "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["name", "render", "train"]
    rec = cli("recommend", "--config", str(conf), "--format", "json")
    assert rec.returncode == 0, rec.stderr
    assert {r["name"] for r in json.loads(rec.stdout)} == {"render", "train"}


def test_the_environment_alone_finds_the_daemon(daemon):
    d, _, db, port = daemon
    env = {"POOL_TRACKER_STORE_PATH": str(db), "POOL_TRACKER_HTTP_PORT": str(port)}
    if d.admin_web is not None:
        env["POOL_TRACKER_HTTP_ADMIN_PORT"] = d.admin_web.url.rsplit(":", 1)[1]
    out = cli("sql", QUERY, "--format", "csv", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["name", "render", "train"]


def test_a_wrong_url_while_the_daemon_holds_the_file_names_both_and_the_lock_holder(daemon):
    _, _, db, _ = daemon
    nobody = free_port()
    out = cli("sql", QUERY, "--db", str(db), "--url", f"http://127.0.0.1:{nobody}")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"http://127.0.0.1:{nobody}" in out.stderr and str(db) in out.stderr
    assert f"(PID {os.getpid()})" in out.stderr and "--config" in out.stderr


def test_nothing_answers_and_no_file_names_the_url_and_the_path_tried(tmp_path):
    nobody = free_port()
    out = cli("sql", "SELECT 1", "--db", str(tmp_path / "missing.duckdb"),
              env={"POOL_TRACKER_HTTP_PORT": str(nobody)})
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"no daemon answered at http://127.0.0.1:{nobody}" in out.stderr
    assert f"{tmp_path / 'missing.duckdb'} does not exist" in out.stderr


class Foreign(BaseHTTPRequestHandler):
    """Some other service on the port: answers JSON, but not a pool-tracker's."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"status": "ok", "service": "something-else"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def foreign():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["recommend"], ["apply", "--pool", "x", "--dry-run"],
                                     ["backtest", "--pool", "x"]])
def test_a_foreign_server_is_one_line_naming_its_url(foreign, tmp_path, command):
    out = cli(*command, "--url", foreign, "--db", str(tmp_path / "h.duckdb"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert foreign in out.stderr and "not as a pool-tracker daemon does" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_url_that_is_not_a_url_is_refused_naming_the_flag(tmp_path):
    out = cli("sql", "SELECT 1", "--url", "127.0.0.1:9108", "--db", str(tmp_path / "h.duckdb"))
    assert out.returncode == 2 and "--url '127.0.0.1:9108'" in out.stderr


def test_the_daemon_url_follows_its_bind_address_and_ports():
    from tracker.client import daemon_url

    def url(**http):
        return daemon_url(load_config(env={}, overrides={f"http.{k}": v for k, v in http.items()})[0])

    assert url() == "http://127.0.0.1:9108"
    assert url(host="0.0.0.0", port=9200) == "http://127.0.0.1:9200"
    assert url(host="::1", port=9200, admin_port=9300) == "http://[::1]:9300"
    assert url(port=0) is None


def test_the_demo_banner_commands_work_verbatim(tmp_path):
    """Copy-paste from the banner of a demo on a non-default port and file, from another folder."""
    import shlex

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_TRACKER_", "QARNOT_"))}
    demo = subprocess.Popen([sys.executable, "-m", "tracker", "demo", "--pools", "4", "--metrics-port", str(port),
                             "--db", "demo.duckdb"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    try:
        commands = {}
        for line in demo.stdout:                  # the banner, line by line, until "Ctrl-C stops."
            if line.strip().startswith(("fleet", "SQL")):
                label, command = line.split(None, 1)
                commands[label] = command.split("   (")[0].strip()
            if line.startswith("Ctrl-C stops"):
                break
        assert set(commands) == {"fleet", "SQL"}, commands
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        for label, command in commands.items():
            argv = shlex.split(command)
            assert argv[0] == "pool-tracker"
            out = subprocess.run([sys.executable, "-m", "tracker", *argv[1:]], capture_output=True, text=True,
                                 timeout=120, env=env, cwd=elsewhere)
            assert out.returncode == 0, (command, out.stderr)
    finally:
        demo.send_signal(subprocess.signal.SIGINT)
        demo.wait(timeout=30)
