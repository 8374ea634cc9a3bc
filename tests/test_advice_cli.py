"""`pool-tracker recommend` and `apply --dry-run` on a history file, as an operator runs them."""
import json
import os
import subprocess
import sys

import pytest

from policies.settings import ElasticSettings
from policies.workload import Workload
from tracker.api import QarnotClient
from tracker.emulator import Emulator
from tracker.poll import poll_once, server_clock
from tracker.store import Store

POOR = ElasticSettings(10, 60, 4, 1800, 1.0, 90)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("advice") / "h.duckdb"
    clock = [1_800_000_000.0]
    with Emulator.running(pools=0, token="t", clock=lambda: clock[0]) as emu:
        pool = emu.cluster.create_pool("render", "docker-batch", POOR, at=clock[0],
                                       workload=Workload("bursty", 4, 1.5), tags=["pool-tracker-autoscale"])
        api, store = QarnotClient(emu.url, "t"), Store(path)
        for _ in range(8 * 120):                 # eight hours, polled every 30 s
            poll_once(api, store, clock=server_clock(api))
            clock[0] += 30
        store.close()
    return path, pool.uuid


def cli(*args):
    env = {**os.environ, "QARNOT_CLIENT_TOKEN": "test-token-1", "QARNOT_CLUSTER_URL": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "tracker", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_recommend_prints_settings_reasons_and_evidence(history):
    path, uuid = history
    out = cli("recommend", "--db", str(path), "--url", "", "--policy", "percentiles", "--format", "json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["pool"] == uuid and row["settings"]["maxTotalSlots"] >= 1 and row["reason"]
    assert set(row["evidence"]) >= {"current", "recommended", "window", "objective"}
    # chosen on the older six hours, scored on the last two, and the output says so
    assert row["evidence"]["window"]["kind"] == "held-out" and row["evidence"]["window"]["hours"] == 2.0
    assert row["evidence"]["objective"]["slo_seconds"] == 300 and row["evidence"]["objective"]["slo_from"] == "config advisor.slo_seconds"
    table = cli("recommend", "--db", str(path), "--url", "", "--policy", "idle-headroom")
    assert "render" in table.stdout and "why:" in table.stdout and "held-out 2 h" in table.stdout
    # every knob of the current and the recommended settings is shown
    assert all(knob in table.stdout for knob in ("min=", "max=", "min_idle=", "idle_time=", "factor=", "period="))


def test_recommend_shows_the_frontier_as_a_table_json_and_plot(history, tmp_path):
    path, uuid = history
    out = cli("recommend", "--db", str(path), "--url", "", "--policy", "search", "--format", "json",
              "--plot", str(tmp_path / "frontier.png"))
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    front = row["evidence"]["frontier"]
    assert len(front) >= 2 and all(r["heldout"] is not None for r in front)
    costs = [r["train"]["slot_hours"] for r in front if not r.get("off_frontier")]
    waits = [r["train"]["wait_p95_seconds"] for r in front if not r.get("off_frontier")]
    assert costs == sorted(costs) and waits == sorted(waits, reverse=True)   # dearer is always faster
    assert (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    table = cli("recommend", "--db", str(path), "--url", "", "--policy", "search")
    assert "cost/wait frontier" in table.stdout and "p95_s held-out" in table.stdout


def test_apply_dry_run_shows_what_would_be_sent_and_sends_nothing(history):
    path, uuid = history
    out = cli("apply", "--pool", uuid, "--dry-run", "--db", str(path), "--url", "")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["dry_run"] and decision["allowed"] and decision["would_send"]["elasticProperty"]["isElastic"]
    assert Store(path, read_only=True).frame(
        "SELECT count(*) AS n FROM events WHERE type LIKE 'commit_%'").n[0] == 0


def test_unknown_pool_and_policy_are_one_line_errors(history):
    path, _ = history
    for args in (["apply", "--pool", "nope", "--db", str(path), "--url", ""],
                 ["recommend", "--policy", "magic", "--db", str(path), "--url", ""]):
        out = cli(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr


def test_recommend_and_apply_go_through_a_running_daemon(history, tmp_path):
    import shutil

    from tracker.config import load_config
    from tracker.daemon import Daemon

    path, uuid = history
    copy = tmp_path / "held.duckdb"
    shutil.copy(path, copy)
    config, _ = load_config(env={}, overrides={"store.path": str(copy), "http.port": 0, "api.url": "http://127.0.0.1:9"})
    daemon = Daemon(config, "test-token-1")
    daemon.web.start()
    try:
        # the daemon wrote its admin token beside its database, where the CLI with the same --db finds it
        db = ("--db", str(copy))
        out = cli("recommend", "--url", daemon.web.url, *db, "--policy", "target-tracking", "--format", "json")
        assert out.returncode == 0, out.stderr
        (row,) = json.loads(out.stdout)
        assert row["pool"] == uuid and row["settings"] is not None and row["evidence"]["recommended"]
        dry = cli("apply", "--pool", uuid, "--dry-run", "--url", daemon.web.url, *db)
        assert dry.returncode == 0 and json.loads(dry.stdout)["dry_run"] is True, dry.stderr
        missing = cli("apply", "--pool", "nope", "--url", daemon.web.url, *db)
        assert missing.returncode == 2 and "not in the history" in missing.stderr
        tokenless = cli("apply", "--pool", uuid, "--url", daemon.web.url, "--db", str(tmp_path / "other.duckdb"))
        assert tokenless.returncode == 2 and "refused the admin token" in tokenless.stderr
    finally:
        daemon.web.stop()
        daemon.store.close()
