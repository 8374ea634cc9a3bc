"""`pool-tracker pools`, and pools named by name or uuid in recommend, apply and backtest."""
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from policies.settings import ElasticSettings
from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.derive import derive_poll
from tracker.events import Event
from tracker.snapshot import PoolSnapshot
from tracker.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TRAIN = ElasticSettings(is_elastic=True, min_total_slots=1, max_total_slots=8, min_idle_slots=2,
                        min_idle_time_seconds=300, resize_factor=0.5, resize_period=90)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet") / "h.duckdb"
    store = Store(path)
    snaps = [PoolSnapshot("uuid-render-a", "render", "FullyExecuting", running_instance_count=4,
                          queued_or_running_task_instances=9),
             PoolSnapshot("uuid-render-b", "render", "Submitted"),
             PoolSnapshot("uuid-train", "train", "FullyExecuting", running_instance_count=3,
                          queued_or_running_task_instances=2, elastic=TRAIN)]
    store.append_poll(T0, T0, derive_poll({}, snaps, T0), pools_seen=3)
    proposed = TRAIN.with_(max_total_slots=4, min_idle_slots=1).to_api()
    store.append_events([Event("recommendation_made", "uuid-train", T0, T0, payload={
        "policy": "search", "settings": proposed, "reason_code": "cheaper", "reason": "r", "confidence": 0.5,
        "evidence": {}})])
    store.close()
    return path


def cli(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_TRACKER_", "QARNOT_"))}
    return subprocess.run([sys.executable, "-m", "tracker", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_pools_lists_the_fleet_with_what_the_advisor_would_change(db):
    out = cli("pools", "--db", str(db), "--url", "", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {r["uuid"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"uuid-render-a", "uuid-render-b", "uuid-train"}
    train = rows["uuid-train"]
    assert (train["name"], train["state"], train["slots"], train["min"], train["max"], train["queue"]) == \
        ("train", "FullyExecuting", 3, 1, 8, 2)
    assert train["recommendation"] == "max 8->4, min_idle 2->1"
    assert train["last_change"] == "2026-03-01 12:00:00"
    assert rows["uuid-render-a"]["recommendation"] == "-"
    csv = cli("pools", "--db", str(db), "--url", "", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "name,uuid,state,slots,min,max,queue,last_change,recommendation"
    table = cli("pools", "--db", str(db), "--url", "")
    assert table.stdout.startswith("3 pools, 7 slots running, 11 task instances queued or running")
    assert "max 8->4, min_idle 2->1" in table.stdout


def test_pools_goes_through_the_daemon_of_the_config(db, tmp_path):
    import shutil

    held = tmp_path / "held.duckdb"
    shutil.copy(db, held)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "c.toml"
    conf.write_text(f"[store]\npath = '{held}'\n[http]\nport = {port}\n")
    daemon = Daemon(load_config(conf, env={})[0], "test-token-1")
    daemon.web.start()
    try:
        out = cli("pools", "--config", str(conf), "--format", "csv")
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.splitlines()) == 4
    finally:
        daemon.web.stop()
        daemon.store.close()


def test_a_name_is_accepted_where_a_pool_is_named(db):
    out = cli("recommend", "--pool", "train", "--db", str(db), "--url", "", "--format", "json",
              "--policy", "percentiles")
    assert out.returncode == 0, out.stderr
    assert [r["pool"] for r in json.loads(out.stdout)] == ["uuid-train"]
    back = cli("backtest", "--pool", "train", "--db", str(db), "--url", "")
    assert "uuid-train" in back.stdout + back.stderr and "Traceback" not in back.stderr


@pytest.mark.parametrize("command", [["apply", "--dry-run"], ["recommend"], ["backtest"]])
def test_an_ambiguous_name_is_refused_listing_the_matches(db, command):
    out = cli(command[0], "--pool", "render", *command[1:], "--db", str(db), "--url", "")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "2 pools are named 'render'" in out.stderr
    assert "uuid-render-a (FullyExecuting)" in out.stderr and "uuid-render-b (Submitted)" in out.stderr


def test_watch_redraws_until_ctrl_c(db):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_TRACKER_", "QARNOT_"))}
    # started as a script's background job would be: SIGINT ignored by the parent, which children inherit
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "pools", "--watch", "--every", "0.2", "--db", str(db),
                             "--url", ""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        frames = 0
        for line in proc.stdout:                 # wait on output, not on time
            frames += line.startswith("pool-tracker pools, every 0.2 s")
            if frames == 2:
                break
        assert frames == 2
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)             # keep reading: a full pipe would hold up its exit
        assert proc.returncode == 0
    finally:
        proc.kill()
