"""The advisor end to end: a bursty pool with poor settings, tracked by the daemon with committing on;
after the advisor commits, the emulator's ground truth shows fewer slot-hours at no worse p95 wait than
its twin that did not opt in (same workload, same window)."""
import numpy as np
import pytest

from policies.scaling import Scaling
from policies.settings import ElasticSettings
from policies.workload import Workload
from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.emulator import Emulator

START, POLL = 1_800_000_000.0, 30.0
POOR = ElasticSettings(min_total_slots=12, max_total_slots=80, min_idle_slots=6, min_idle_time_seconds=1800,
                       resize_factor=1.0, resize_period=90)


def p95(waits):
    if not waits:
        return 0.0
    values, counts = np.array(waits).T
    order = np.argsort(values)
    cumulative = np.cumsum(counts[order])
    return float(values[order][np.searchsorted(cumulative, 0.95 * cumulative[-1])])


@pytest.mark.parametrize("form", ["elasticProperty", "scaling"])
def test_committed_recommendation_cuts_slot_hours_without_hurting_waits(tmp_path, form):
    """The same poor sizing as legacy elastic settings, or as a one-policy scaling document."""
    clock = [START]
    scaling = Scaling.from_elastic(POOR) if form == "scaling" else None
    with Emulator.running(pools=0, token="t", clock=lambda: clock[0]) as emu:
        make = lambda name, tags: emu.cluster.create_pool(  # noqa: E731
            name, "docker-batch", POOR, at=START, workload=Workload("bursty", 9, 1.5), tags=tags, record_waits=True,
            scaling=scaling)
        opted, control = make("opted-in", ["pool-tracker-autoscale"]), make("control", [])
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "api.clock": "server", "store.path": str(tmp_path / "a.duckdb"), "http.port": 0,
            "advisor.commit": True, "advisor.policies": ["search"], "advisor.history_seconds": 86400})
        daemon = Daemon(config, emu.token)

        def run_for(hours, advise_every=None):
            end = clock[0] + hours * 3600
            while clock[0] < end:
                assert daemon.poll().ok
                if advise_every and (clock[0] - START) % advise_every < POLL:
                    daemon.advise()
                clock[0] += POLL

        run_for(12)                                   # history for the policies
        daemon.advise()
        events = daemon.store.frame(
            "SELECT pool_uuid, type, payload->>'$.code' AS code FROM events WHERE type LIKE 'commit_%'")
        decisions = {(r.pool_uuid, r.type, r.code) for r in events.itertuples()}
        assert (opted.uuid, "commit_applied", "ok") in decisions or (opted.uuid, "commit_applied", "limited") in decisions
        assert (control.uuid, "commit_refused", "not_opted_in") in decisions
        if form == "scaling":   # the pool stays on scaling: its policy took the new knobs (or a new document)
            assert opted.scaling is not None and opted.scaling != scaling and control.scaling == scaling
        else:
            assert opted.model.settings != POOR and control.model.settings == POOR

        marks = {p.uuid: (p.model.slot_seconds, len(p.model.waits)) for p in (opted, control)}
        run_for(24, advise_every=6 * 3600)             # the window compared, with further rounds
        result = {}
        for pool in (opted, control):
            slot_seconds, first_wait = marks[pool.uuid]
            result[pool.name] = ((pool.model.slot_seconds - slot_seconds) / 3600, p95(pool.model.waits[first_wait:]))
        daemon.store.close()
    print(f"\nafter commit, 24 simulated hours: opted-in {result['opted-in'][0]:.1f} slot-hours, "
          f"p95 wait {result['opted-in'][1]:.0f} s; control {result['control'][0]:.1f} slot-hours, "
          f"p95 wait {result['control'][1]:.0f} s; settings now {opted.model.settings}")
    assert result["opted-in"][0] < 0.8 * result["control"][0]
    assert result["opted-in"][1] <= result["control"][1] * 1.05
