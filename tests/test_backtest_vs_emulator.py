"""The emulator and the back-tester agree: a workload run through the emulator and recorded by the
tracker, then replayed by the back-tester from that history, costs the same slot-hours within 2%."""
import pytest

from policies.backtest import replay
from policies.settings import ElasticSettings
from policies.traces import history_to_trace
from policies.workload import Workload
from tracker.api import QarnotClient
from tracker.emulator import Emulator
from tracker.poll import poll_once, server_clock
from tracker.store import Store

START, HOURS, POLL = 1_800_000_000.0, 12, 30.0


def true_slot_seconds(truth, pool, start, end):
    total, ready, last = 0.0, 0, start
    for t in truth:
        if t.pool == pool and t.kind == "ready" and t.at <= end:
            total += ready * (max(t.at, start) - last) if t.at > start else 0.0
            last, ready = max(t.at, start), t.new
    return total + ready * (end - last)


@pytest.mark.parametrize("pattern,settings", [
    ("bursty", ElasticSettings(0, 40, 1, 300, 0.5, 90)),
    ("steady", ElasticSettings(1, 30, 0, 120, 1.0, 60)),
    ("diurnal", ElasticSettings(0, 60, 2, 600, 0.25, 90)),
])
def test_recorded_history_replays_to_the_same_slot_hours(tmp_path, pattern, settings):
    clock = [START]
    with Emulator.running(pools=0, token="t", clock=lambda: clock[0]) as emu:
        pool = emu.cluster.create_pool(pattern, "docker-batch", settings, at=START,
                                       workload=Workload(pattern, 21, 2.0))
        api, store = QarnotClient(emu.url, emu.token), Store(tmp_path / "h.duckdb")
        while clock[0] <= START + HOURS * 3600:
            assert poll_once(api, store, clock=server_clock(api)).ok
            clock[0] += POLL
        trace, start, end = history_to_trace(store.history(pool.uuid))
        store.close()
        truth = true_slot_seconds(emu.cluster.ground_truth, pool.uuid, start, end)
    replayed = replay(trace, settings, start=start, end=end).slot_seconds
    print(f"{pattern}: emulator {truth / 3600:.1f} slot-hours, back-test {replayed / 3600:.1f}")
    assert truth > 10 * 3600 and replayed == pytest.approx(truth, rel=0.02)
