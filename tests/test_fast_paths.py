"""The write path's fast paths give exactly what their slow, obvious counterparts give."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from tracker.events import Event, apply, folded

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = {"isElastic": True, "minTotalSlots": 0, "maxTotalSlots": 4, "minIdleSlots": 0, "minIdleTimeSeconds": 60,
            "rampResizeFactor": 0.5, "resizePeriod": 90}
SCALING = {"policies": [{"type": "Fixed", "name": "f", "slotsCount": 2, "enabledPeriods": [{"type": "Always"}]}]}
META = {"name": "n", "shortname": "s", "profile": "p", "tags": ["b", "a"], "labels": {"k": "v"}, "slots_per_node": 2,
        "scheduling_type": "Flex", "project": None}
PAYLOADS = {  # every event type that changes a view, with a payload it can carry
    "pool_discovered": META, "pool_updated": {**META, "name": "renamed"}, "state_changed": None,
    "instances_changed": None, "cores_changed": None, "queued_changed": None,
    "settings_changed": {"old": None, "new": SETTINGS}, "scaling_changed": {"old": None, "new": SCALING},
    "scaling_policy_activated": {"from": None, "to": "f"}, "errors_appeared": {"errors": ["boom"]},
    "errors_cleared": None, "execution_checkpointed": None, "pool_vanished": None,
    "credits_checkpointed": None, "carbon_checkpointed": {"energy_wh": 3.0, "pue": 1.1},
    "pool_unreadable": {"reason": "bad"}, "pool_readable": None, "recommendation_made": {"policy": "x"},
}

events = st.builds(
    lambda kind, pool, minute, state, value, exec_s: Event(
        kind, pool, T0 + timedelta(minutes=minute), T0 + timedelta(minutes=minute), state_to=state,
        value_old=0.0, value_new=float(value), execution_seconds=exec_s, payload=PAYLOADS[kind]),
    st.sampled_from(sorted(PAYLOADS)), st.sampled_from(["a", "b", "c", None]), st.integers(0, 5),
    st.sampled_from(["Submitted", "FullyExecuting"]), st.integers(0, 9), st.none() | st.floats(0, 1e6))


def one_by_one(views, events):
    views = dict(views)
    for event in events:
        if event.pool_uuid is not None:
            views[event.pool_uuid] = apply(views.get(event.pool_uuid), event)
    return {uuid: view for uuid, view in views.items() if view is not None}


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=30), st.lists(events, max_size=30))
def test_folding_a_batch_per_pool_equals_applying_its_events_one_by_one(earlier, batch):
    before = one_by_one({}, earlier)
    after = {**before, **folded(before, batch)}
    assert {uuid: view for uuid, view in after.items() if view is not None} == one_by_one(before, batch)
