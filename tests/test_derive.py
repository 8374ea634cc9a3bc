"""Derivation and the projection fold: named scenarios and properties."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from policies.settings import ElasticSettings
from tracker.derive import derive, derive_poll, unaccounted
from tracker.events import apply
from tracker.snapshot import FINISHED, STATES, PoolSnapshot

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fold(view, events):
    for event in events:
        view = apply(view, event)
    return view


def snap(**kw):
    return PoolSnapshot(**{"uuid": "p", "name": "n", "state": "Submitted", **kw})


def test_a_pool_that_changes_nothing_writes_nothing():
    first = snap(state="FullyExecuting", running_instance_count=3, execution_time_seconds=10)
    view = fold(None, derive(None, first, T0))
    assert derive(view, first, T0 + timedelta(seconds=30)) == []


def test_hidden_state_revealed_by_previous_state_is_recorded_with_api_times():
    view = fold(None, derive(None, snap(state="Submitted", state_transition_time=T0), T0))
    t1, t2 = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
    events = derive(view, snap(state="FullyDispatched", previous_state="PartiallyDispatched",
                               previous_state_transition_time=t1, state_transition_time=t2), T0 + timedelta(seconds=30))
    assert [(e.state_from, e.state_to, e.occurred_at) for e in events] == [
        ("Submitted", "PartiallyDispatched", t1), ("PartiallyDispatched", "FullyDispatched", t2)]


def test_execution_time_alone_is_checkpointed_once_per_hour():
    view = fold(None, derive(None, snap(execution_time_seconds=0), T0))
    minute = derive(view, snap(execution_time_seconds=60), T0 + timedelta(minutes=1))
    hour = derive(view, snap(execution_time_seconds=3600), T0 + timedelta(hours=1))
    assert minute == [] and [e.type for e in hour] == ["execution_checkpointed"]


def test_vanished_pools_are_recorded_and_leave_the_projection():
    view = fold(None, derive(None, snap(), T0))
    events = derive_poll({"p": view}, [], T0)
    assert [e.type for e in events] == ["pool_vanished"] and apply(view, events[0]) is None


@given(known=st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(STATES), max_size=6),
       listed=st.sets(st.sampled_from("abcdefgh")), gone=st.sets(st.sampled_from("abcdefgh")))
def test_a_partial_listing_vanishes_only_what_the_api_said_is_gone(known, listed, gone):
    """Absent from a live-only listing is not vanished: only known pools the API answered 404 for go, while
    a complete listing (gone=None) vanishes every known pool it lacks; the ones to ask for are exactly the
    known, unfinished, unlisted pools."""
    views = {uuid: fold(None, derive(None, snap(uuid=uuid, state=state), T0)) for uuid, state in known.items()}
    shown = [snap(uuid=uuid, state=known.get(uuid, "Submitted")) for uuid in sorted(listed - gone)]

    def vanished(events):
        return {e.pool_uuid for e in events if e.type == "pool_vanished"}
    assert vanished(derive_poll(views, shown, T0, gone=gone)) == known.keys() & gone
    assert vanished(derive_poll(views, shown, T0)) == known.keys() - (listed - gone)
    assert set(unaccounted(views, listed - gone)) == {u for u, s in known.items()
                                                       if s not in FINISHED and u not in listed - gone}


snapshots = st.builds(
    PoolSnapshot, uuid=st.just("p"), name=st.sampled_from(["a", "b"]), state=st.sampled_from(STATES),
    previous_state=st.none() | st.sampled_from(STATES),
    running_instance_count=st.integers(0, 50), running_core_count=st.integers(0, 400),
    queued_or_running_task_instances=st.integers(0, 500),
    execution_time_seconds=st.floats(0, 1e7, allow_nan=False),
    elastic=st.none() | st.builds(ElasticSettings, min_total_slots=st.integers(0, 3), max_total_slots=st.integers(3, 9)),
    tags=st.lists(st.sampled_from(["x", "y"]), max_size=2).map(tuple),
    errors=st.lists(st.sampled_from(["boom", "oops"]), max_size=2).map(tuple))


@given(st.lists(snapshots, min_size=1, max_size=12))
def test_folding_the_derived_events_reproduces_every_snapshot(sequence):
    view, now = None, T0
    for s in sequence:
        now += timedelta(seconds=30)
        events = derive(view, s, now)
        assert derive(view, s, now) == events              # deterministic
        view = fold(view, events)
        assert (view.state, view.running_instances, view.running_cores, view.queued_or_running, view.settings,
                view.errors, view.tags, view.name) == (
            s.state, s.running_instance_count, s.running_core_count, s.queued_or_running_task_instances,
            s.elastic, s.errors, s.tags, s.name)
        assert derive(view, s, now) == []                   # nothing left to say


def test_a_scaling_change_and_the_active_policy_switching_are_each_an_event_folded_into_the_view():
    from policies.scaling import Always, FixedPolicy, ManagedTasksQueuePolicy, Scaling, Weekly

    office = Scaling((FixedPolicy("office", 20, (Weekly(("monday",), 8 * 3600, 18 * 3600),)),
                      ManagedTasksQueuePolicy("default", 0, 40, 0, 90, 0.2, (Always(),))))
    view = fold(None, derive(None, snap(scaling=office, active_policy="default", slots_per_node=4), T0))
    assert (view.scaling, view.active_policy, view.slots_per_node) == (office, "default", 4)
    switched = derive(view, snap(scaling=office, active_policy="office", slots_per_node=4), T0 + timedelta(hours=1))
    assert [(e.type, e.payload) for e in switched] == [("scaling_policy_activated", {"from": "default", "to": "office"})]
    lean = Scaling(office.policies[1:])
    changed = derive(fold(view, switched), snap(scaling=lean, active_policy="default", slots_per_node=4),
                     T0 + timedelta(hours=2))
    assert [e.type for e in changed] == ["scaling_changed", "scaling_policy_activated"]
    assert changed[0].payload["new"] == lean.to_api() and fold(view, changed).scaling == lean
