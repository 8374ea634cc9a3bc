"""`pool-tracker backtest` as a user runs it: on a trace file, on a tracked pool, with bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from policies.backtest import backtest
from policies.scaling import Scaling
from policies.settings import ElasticSettings
from policies.traces import read_csv
from policies.workload import Workload
from tracker.api import QarnotClient
from tracker.emulator import Emulator
from tracker.poll import poll_once, server_clock
from tracker.store import Store

TRACES = Path(__file__).resolve().parent.parent / "benchmarks" / "traces"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tracker", "backtest", *args], capture_output=True, text=True,
                          timeout=120)


def test_trace_file_compares_candidates_with_baselines_and_plots(tmp_path):
    out = cli("--trace", str(TRACES / "bursty.csv"), "--settings", "max=40,min_idle=2", "--format", "json",
              "--plot", str(tmp_path / "p.png"))
    assert out.returncode == 0, out.stderr
    results = {r["candidate"]: r for r in json.loads(out.stdout)["results"]}
    assert set(results) == {"static-at-peak", "sdk-defaults-max-at-peak", "max=40,min_idle=2"}
    assert results["static-at-peak"]["slot_hours"] > results["sdk-defaults-max-at-peak"]["slot_hours"]
    assert results["static-at-peak"]["wait_p95"] <= results["max=40,min_idle=2"]["wait_p95"]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_swf_with_malformed_lines_reports_them(tmp_path):
    swf = tmp_path / "log.swf"
    swf.write_text("; comment\n1 0 1 600 4 -1 -1 4 600\n2 30 1 -1 2 -1\n3 nonsense\n")
    out = cli("--trace", str(swf))
    assert out.returncode == 0 and "1 tasks, 4 instances, 2 lines skipped (first: line 3" in out.stdout


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("when,count\n1,2\n")
    for args in (["--trace", str(bad)], ["--trace", str(TRACES / "steady.csv"), "--settings", "factor=2"],
                 ["--trace", str(tmp_path / "missing.csv")], []):
        out = cli(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (args, out.stderr)


def test_a_tracked_pools_own_history_against_its_current_settings(tmp_path):
    clock = [1_800_000_000.0]
    settings = ElasticSettings(2, 30, 0, 60, 1.0, 90)
    with Emulator.running(pools=0, token="t", clock=lambda: clock[0]) as emu:
        pool = emu.cluster.create_pool("p", "docker-batch", settings, at=clock[0], workload=Workload("steady", 5))
        api, store = QarnotClient(emu.url, "t"), Store(tmp_path / "h.duckdb")
        for _ in range(240):
            poll_once(api, store, clock=server_clock(api))
            clock[0] += 30
        store.close()
    out = cli("--pool", pool.uuid, "--db", str(tmp_path / "h.duckdb"), "--url", "", "--format", "json")
    assert out.returncode == 0, out.stderr
    results = {r["candidate"]: r for r in json.loads(out.stdout)["results"]}
    assert results["current"]["slot_hours"] > 2 * 2 * 0.9   # at least its two minimum slots for two hours


def test_a_scaling_document_is_a_candidate_scored_with_its_weekly_periods(tmp_path):
    # the trace's time 0 is Monday 00:00 UTC: a Fixed weekend policy first, the elastic default after it
    document = {"policies": [
        {"type": "Fixed", "name": "weekend", "slotsCount": 0, "enabledPeriods": [
            {"type": "Weekly", "days": ["saturday", "sunday"], "startTimeUtc": "00:00:00", "endTimeUtc": "00:00:00"}]},
        {"type": "ManagedTasksQueue", "name": "default", "minTotalSlots": 0, "maxTotalSlots": 60, "minIdleSlots": 1,
         "minIdleTimeSeconds": 300, "scalingFactor": 0.2, "enabledPeriods": [{"type": "Always"}]}]}
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({"name": "a pool document", "scaling": document}))
    out = cli("--trace", str(TRACES / "bursty.csv"), "--settings", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    results = {r["candidate"]: r for r in json.loads(out.stdout)["results"]}
    expected = backtest(read_csv((TRACES / "bursty.csv").read_text()), Scaling.from_api(document))
    assert results[str(path)]["slot_hours"] == pytest.approx(expected.slot_hours)
    assert results[str(path)]["wait_max"] == pytest.approx(expected.wait_max)
    from_thursday = backtest(read_csv((TRACES / "bursty.csv").read_text()), Scaling.from_api(document), epoch=0.0)
    assert from_thursday.slot_hours != expected.slot_hours   # weekends fall elsewhere from 1970-01-01

    path.write_text(json.dumps({"policies": [{"type": "Fixed", "name": "x", "slotsCount": -2, "enabledPeriods": []}]}))
    out = cli("--trace", str(TRACES / "bursty.csv"), "--settings", str(path))
    assert out.returncode == 2 and "policies[0].slotsCount" in out.stderr and out.stderr.count("\n") == 1


def _office_csv(tmp_path, days=8):
    """Office hours every day (2 instances every 5 minutes, 15 minutes each), a trickle at night."""
    rows = ["submit_time,instances,duration_seconds"]
    for d in range(days):
        for h in range(24):
            if 9 <= h < 17:
                rows += [f"{d * 86400 + h * 3600 + i * 300},2,900" for i in range(12)]
            elif h % 3 == 0:
                rows.append(f"{d * 86400 + h * 3600 + 600},1,900")
    path = tmp_path / "office.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_time_of_week_is_replayed_as_its_weekly_document_and_every_setting_is_shown(tmp_path):
    out = cli("--trace", str(_office_csv(tmp_path)), "--policy", "time-of-week", "--format", "json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    held = {r["candidate"]: r for r in body["heldout"]}
    # the hourly schedule runs as Qarnot would run it: office work does not wait for hours
    assert held["policy:time-of-week"]["wait_p95"] < 600
    assert body["settings"]["policy:time-of-week"]["policies"][0]["enabledPeriods"][0]["type"] == "Weekly"
    assert "chose on" in body["window"] and "held-out" in body["window"]
    table = cli("--trace", str(_office_csv(tmp_path)), "--policy", "time-of-week")
    assert "settings scored:" in table.stdout and "sdk-defaults-max-at-peak: min=0 max=" in table.stdout
    assert "held-out window:" in table.stdout and "UTC]" in table.stdout


def test_search_shows_its_frontier_keeps_a_tight_slo_and_draws_it(tmp_path):
    out = cli("--trace", str(_office_csv(tmp_path)), "--policy", "search", "--slo", "30", "--format", "json",
              "--frontier-plot", str(tmp_path / "frontier.png"))
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    held = {r["candidate"]: r for r in body["heldout"]}
    assert held["policy:search"]["wait_p95"] <= 30 < held["sdk-defaults-max-at-peak"]["wait_p95"]
    evidence = body["evidence"]["policy:search"]
    assert evidence["recommended"]["wait_p95_seconds"] == round(held["policy:search"]["wait_p95"], 1)
    assert len(evidence["frontier"]) >= 2 and (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    table = cli("--trace", str(_office_csv(tmp_path)), "--policy", "search", "--slo", "30")
    assert "cost/wait frontier" in table.stdout and "p95 wait" in table.stdout
    # one progress bar, covering the search's own back-tests, not only the final comparison
    import re
    done, total = map(int, re.findall(r"(\d+)/(\d+) \[", table.stderr)[-1])
    assert done == total > evidence["candidates"]


def test_help_shows_the_new_flags():
    text = cli("--help").stdout
    assert all(flag in text for flag in ("--budget", "--holdout", "--frontier-plot", "--slo"))
    text = subprocess.run([sys.executable, "-m", "tracker", "recommend", "--help"], capture_output=True,
                          text=True).stdout
    assert "--plot" in text and "SLO" in text
