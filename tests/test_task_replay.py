"""`backtest --pool` replays the recorded tasks when it has them: on an emulated pool, replaying the real
tasks under the pool's own settings reproduces the emulator's billed slot-hours and waits more closely
than arrivals inferred from count changes (30 s polls), and the output says which source it used."""
import json

import numpy as np
import pytest

from helpers import HandClock
from policies.backtest import replay, weighted_quantiles
from policies.settings import ElasticSettings
from policies.traces import TraceError, tasks_cover_history
from policies.workload import Workload
from tracker.backtest_cmd import load_trace, run_backtest
from tracker.client import Target
from tracker.emulator import Emulator
from test_tasks import Tracked
from tracker.poll import poll_once

START, HOURS = 1_800_000_000.0, 4          # Friday 2027-01-15 08:00 UTC
SETTINGS = ElasticSettings(0, 30, 1, 300, 0.5, 90)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Four simulated hours of one steady pool, polled and its tasks collected every 30 s."""
    path = tmp_path_factory.mktemp("replay") / "h.duckdb"
    with Emulator.running(pools=0, token="replay-token", clock=HandClock(START)) as emu:
        pool = emu.cluster.create_pool("steady", "docker-batch", SETTINGS, at=START, workload=Workload("steady", 4, 2.0))
        tracked = Tracked(emu, path)
        tracked.run(HOURS * 3600)
        tracked.store.close()
        truth, book = emu.cluster, emu.cluster.tasks.visible(emu.clock.now)
        now = emu.clock.now
    waits = [(at - t.created, n) for t in book for at, n in t.starts]           # each group of instances started
    waits += [(now - t.created, t.instances - t.started) for t in book if t.started < t.instances]   # still queued
    return pool.uuid, Target(None, path), truth, waits


def test_a_replay_of_the_real_tasks_is_closer_to_the_emulator_than_inference(recorded):
    pool, target, truth, _ = recorded
    errors = {}
    for arrivals in ("tasks", "counts"):
        trace, start, end, _, source = load_trace(None, pool, target, arrivals)
        billed = truth.billed_slot_seconds(pool, start, end)
        errors[arrivals] = abs(replay(trace, SETTINGS, start=start, end=end).slot_seconds - billed) / billed
        assert billed > 20 * 3600
    assert errors["tasks"] < 0.002 and errors["tasks"] < errors["counts"], errors


def test_replayed_waits_are_the_real_ones_only_from_tasks(recorded):
    pool, target, _, real = recorded
    real_p95 = weighted_quantiles(np.array([w for w, _ in real]), np.array([n for _, n in real]), (0.95,))[0]
    found = {}
    for arrivals in ("tasks", "counts"):
        trace, start, end, _, _ = load_trace(None, pool, target, arrivals)
        run = replay(trace, SETTINGS, start=start, end=end)
        found[arrivals] = weighted_quantiles(run.waits, run.counts, (0.95,))[0]
    assert found["tasks"] == pytest.approx(real_p95, abs=1.0)
    assert abs(found["counts"] - real_p95) > abs(found["tasks"] - real_p95), (found, real_p95)


def test_the_backtest_says_which_arrivals_it_replayed(recorded, tmp_path):
    pool, target, _, _ = recorded
    common = dict(trace_path=None, pool=pool, target=target, settings_texts=(), policies=(), startup_delay=60.0,
                  slo=300.0, cores_per_slot=None, fmt="json", plot_path=None, progress=False)
    assert "recorded tasks" in json.loads(run_backtest(**common))["source"]
    assert "inferred from count changes" in json.loads(run_backtest(**common, arrivals="counts"))["source"]


def test_without_recorded_tasks_the_counts_speak_and_asking_for_tasks_says_how_to_get_them(tmp_path):
    with Emulator.running(pools=0, token="replay-token", clock=HandClock(START)) as emu:
        pool = emu.cluster.create_pool("steady", "docker-batch", SETTINGS, at=START, workload=Workload("steady", 4, 2.0))
        tracked = Tracked(emu, tmp_path / "h.duckdb")
        for _ in range(60):              # polls only: no tasks collector
            emu.clock.now += 30
            poll_once(tracked.client, tracked.store, clock=tracked.now)
        tracked.store.close()
    target = Target(None, tmp_path / "h.duckdb")
    trace, _, _, _, source = load_trace(None, pool.uuid, target)
    assert trace.arrivals and "inferred from count changes" in source and "no recorded tasks" in source
    with pytest.raises(TraceError, match=r"enable \[tasks\]"):
        load_trace(None, pool.uuid, target, "tasks")


@pytest.mark.parametrize("first_demand,first_task,covered", [
    (None, None, False),            # nothing recorded
    (1000.0, None, False),
    (None, 5000.0, True),           # no work before the tasks: they tell everything
    (1000.0, 1060.0, True),         # the collector's first run a minute after the first poll
    (1000.0, 9000.0, False),        # work for two hours before tasks were recorded: the record misses it
])
def test_recorded_tasks_cover_a_history_only_from_its_first_work(first_demand, first_task, covered):
    assert tasks_cover_history(first_demand, first_task) is covered
