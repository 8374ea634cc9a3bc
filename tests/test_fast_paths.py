"""The write path's fast paths give exactly what their slow, obvious counterparts give."""
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from policies.settings import ElasticSettings
from tracker.events import Event, PoolView, apply, folded
from tracker.metrics import PoolCollector
from tracker.parse import BadDocument, _scaling, _scaling_of
from tracker.snapshot import STATES
from tracker.store import Store, _row_event

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
    "task_submitted": {"task": "t"},
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


zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
TIMES = [(T0 + timedelta(minutes=m)).astimezone(z) for m in range(4) for z in (timezone.utc, timezone(timedelta(hours=2)))]
stamps = st.sampled_from(TIMES) | st.builds(lambda minute, zone: (T0 + timedelta(minutes=minute)).astimezone(zone),
                                           st.integers(0, 4), zones)   # shared time objects, as in a poll, or not


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("roundtrip") / "r.duckdb")
    yield store
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.builds(lambda event, occurred, recorded: Event(
    event.type, event.pool_uuid, occurred, recorded, event.state_from, event.state_to, event.value_old,
    event.value_new, event.execution_seconds, event.payload), events, stamps, stamps), min_size=1, max_size=40))
def test_events_read_back_from_the_store_as_they_were_written(store, written):
    """Times shared by many events are converted once and spread by index: each row still gets its own."""
    poll = store.append_poll(T0, T0, written)
    read = [_row_event(row) for row in store.query(f"SELECT * FROM events WHERE poll_id = {poll} ORDER BY seq").rows]
    assert read == written
    latest = store.query("SELECT max(recorded_at) FROM events").rows[0][0].replace(tzinfo=timezone.utc)
    assert store.last_recorded == latest     # the latest time the history speaks of, for the clock check


step = st.tuples(st.sampled_from(["change", "add", "remove", "recommend"]), st.sampled_from("abcd"),
                 st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=12))
def test_a_cached_scrape_serves_the_bytes_a_fresh_one_renders(steps):
    """Pools changed, added, removed or given recommendations between scrapes: the collector that reuses
    what it rendered before serves exactly what a brand-new one renders."""
    views = {"a": PoolView("a", name="a", state="FullyExecuting", running_cores=4, tags=("t",))}
    recommendations: dict = {}
    kept = PoolCollector(lambda: list(views.values()), lambda: recommendations)
    for kind, uuid, n in steps:
        if kind == "remove":
            views.pop(uuid, None)
        elif kind == "recommend":
            recommendations = {**recommendations, uuid: {"p": ElasticSettings(0, n + 1, 0, 60, 0.5, 90)}}
        else:
            base = views.get(uuid) or PoolView(uuid, name=uuid, state="Submitted")
            views[uuid] = dataclasses.replace(base, running_cores=n, state=STATES[n]) if kind == "change" else base
        assert kept.render() == PoolCollector(lambda: list(views.values()), lambda: recommendations).render()


numbers = st.none() | st.integers(-2, 50) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans()
policy = st.fixed_dictionaries({"type": st.sampled_from(["Fixed", "ManagedTasksQueue", "Other"]), "name": st.text(
    max_size=3), "slotsCount": numbers, "minTotalSlots": numbers, "maxTotalSlots": numbers,
    "enabledPeriods": st.just([{"type": "Always"}]) | st.just(({"type": "Always"},))})
scaling_documents = st.fixed_dictionaries({"policies": st.lists(policy, max_size=3) | st.just(None),
                                           "activePolicyName": st.none() | st.text(max_size=3) | st.integers()})


def outcome(parse, body):
    try:
        return parse(body)
    except BadDocument as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(scaling_documents, min_size=1, max_size=4))
def test_scaling_documents_parsed_once_per_distinct_json_read_as_parsing_each_does(bodies):
    for body in bodies:
        assert outcome(_scaling, body) == outcome(_scaling_of, body)
