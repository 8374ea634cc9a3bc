"""The emulator and the back-tester agree: a workload run through the emulator and recorded by the
tracker, then replayed by the back-tester from that history, costs the same billed slot-hours within 2%,
under legacy elastic settings and under a weekly scaling schedule (committed to a running pool, or the
pool created with it), on one-slot and multi-slot nodes (the history's running slots are nodes x
`slotsPerNode`, as the tracker records them)."""
from dataclasses import dataclass

import httpx
import pytest

from policies.backtest import replay
from policies.scaling import FixedPolicy, ManagedTasksQueuePolicy, Scaling, Weekly
from policies.settings import ElasticSettings
from policies.traces import history_to_trace
from policies.workload import Workload
from tracker.api import QarnotClient
from tracker.emulator import Emulator
from tracker.poll import poll_once, server_clock
from tracker.store import Store

START, HOURS, POLL = 1_800_000_000.0, 12, 30.0   # Friday 2027-01-15 08:00 UTC
# 4 slots fixed Friday 10:00-14:00 UTC, otherwise elastic: the switch happens inside the 12 hours
FRIDAY_RUSH = Scaling((FixedPolicy("rush", 4, (Weekly(("friday",), 10 * 3600, 14 * 3600),)),
                       ManagedTasksQueuePolicy("default", 0, 40, 1, 300, 0.2)))


def true_slot_seconds(truth, pool, start, end):
    """Billed slot-seconds (ready + starting) from the emulator's ground truth."""
    total, slots, last = 0.0, {"ready": 0, "starting": 0}, start
    for t in truth:
        if t.pool == pool and t.kind in slots and t.at <= end:
            total += sum(slots.values()) * (max(t.at, start) - last) if t.at > start else 0.0
            last, slots[t.kind] = max(t.at, start), t.new
    return total + sum(slots.values()) * (end - last)


CASES = [
    ("bursty", ElasticSettings(0, 40, 1, 300, 0.5, 90), "commit", 1),
    ("steady", ElasticSettings(1, 30, 0, 120, 1.0, 120), "commit", 1),
    ("diurnal", ElasticSettings(0, 60, 2, 600, 0.25, 90), "commit", 1),
    ("steady", FRIDAY_RUSH, "commit", 1),
    ("diurnal", FRIDAY_RUSH, "create", 1),
    ("bursty", ElasticSettings(0, 40, 1, 300, 0.5, 90), "create", 4),
    ("steady", FRIDAY_RUSH, "create", 2),
]


@dataclass
class Recording:
    frame: object        # the tracker's history of the pool
    truth: list          # the emulator's ground truth
    pool: str
    slots_per_node: int  # as the pool document serves it


_recorded: dict = {}


def record(tmp_path_factory, pattern, settings, how, per_node) -> Recording:
    """Twelve simulated hours of one pool polled by the tracker every 30 s (once per case per module)."""
    key = (pattern, settings, how, per_node)
    if key in _recorded:
        return _recorded[key]
    clock = [START]
    scaling = settings if how == "create" and isinstance(settings, Scaling) else None
    legacy = settings if how == "create" and scaling is None else ElasticSettings(0, 40, 0, 0, 1.0, 90)
    with Emulator.running(pools=0, token="t", clock=lambda: clock[0]) as emu:
        pool = emu.cluster.create_pool(pattern, "docker-batch", legacy, at=START, workload=Workload(pattern, 21, 2.0),
                                       scaling=scaling, slots_per_node=per_node)
        if how == "commit":
            emu.cluster.set_settings(pool.uuid, settings)     # at START, before any work
        api, store = QarnotClient(emu.url, emu.token), Store(tmp_path_factory.mktemp("h") / "h.duckdb")
        while clock[0] <= START + HOURS * 3600:
            assert poll_once(api, store, clock=server_clock(api)).ok
            clock[0] += POLL
        doc = httpx.get(f"{emu.url}/pools/{pool.uuid}", headers={"Authorization": emu.token}).json()
        frame = store.history(pool.uuid)
        store.close()
        _recorded[key] = Recording(frame, list(emu.cluster.ground_truth), pool.uuid,
                                   doc["multiSlotsSettings"]["slotsPerNode"])
    return _recorded[key]


def agree(recording, settings, frame):
    trace, start, end = history_to_trace(frame)
    truth = true_slot_seconds(recording.truth, recording.pool, start, end)
    replayed = replay(trace, settings, start=start, end=end).slot_seconds
    print(f"emulator {truth / 3600:.1f} slot-hours, back-test {replayed / 3600:.1f}")
    assert truth > 10 * 3600 and replayed == pytest.approx(truth, rel=0.02)


@pytest.mark.parametrize("pattern,settings,how,per_node", CASES)
def test_recorded_history_replays_to_the_same_slot_hours(tmp_path_factory, pattern, settings, how, per_node):
    recording = record(tmp_path_factory, pattern, settings, how, per_node)
    switches = [(t.at, t.old, t.new) for t in recording.truth if t.kind == "policy"]
    if isinstance(settings, Scaling):   # the emulator recorded activePolicyName changes at the boundaries
        first = (START, "elastic", "default") if how == "commit" else (START, None, "default")
        assert switches == [first, (START + 2 * 3600, "default", "rush"), (START + 6 * 3600, "rush", "default")]
    assert recording.slots_per_node == per_node
    agree(recording, settings, recording.frame)
