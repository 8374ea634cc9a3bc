from datetime import timezone

import pytest
from hypothesis import given, strategies as st

from tracker.parse import BadDocument, format_timespan, parse_pool, parse_time, parse_timespan


@given(st.integers(min_value=0, max_value=10**14))
def test_timespan_round_trips_to_the_tick(ticks):
    seconds = ticks / 10_000_000
    assert parse_timespan(format_timespan(seconds)) == pytest.approx(seconds, abs=1e-7)


@pytest.mark.parametrize("text,seconds", [("00:00:00", 0), ("01:02:03", 3723), ("2.00:00:01.5", 172801.5),
                                          ("00:00:00.0000001", 1e-7)])
def test_timespan_examples(text, seconds):
    assert parse_timespan(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "12", "aa:bb:cc", "1:2"])
def test_bad_timespans_are_rejected(bad):
    with pytest.raises(BadDocument):
        parse_timespan(bad)


def test_dates_are_utc_with_or_without_fraction():
    assert parse_time("2026-01-02T03:04:05Z").tzinfo == timezone.utc
    assert parse_time("2026-01-02T03:04:05.25Z").microsecond == 250000


def test_full_document_parses_and_ignores_unknown_fields():
    snap = parse_pool({
        "uuid": "u", "name": "n", "state": "FullyExecuting", "previousState": "PartiallyExecuting",
        "stateTransitionTime": "2026-01-01T00:00:00Z", "runningCoreCount": 8, "runningInstanceCount": 2,
        "queuedOrRunningTaskInstancesCount": 5, "executionTime": "1.00:00:00", "tags": ["a"],
        "labels": {"z": "1", "a": "2"}, "errors": [{"message": "boom"}], "somethingNew": {"x": 1},
        "elasticProperty": {"isElastic": True, "minTotalSlots": 1, "maxTotalSlots": 4, "minIdleSlots": 0,
                            "minIdleTimeSeconds": 30, "rampResizeFactor": 1, "resizePeriod": 90},
        "status": {"runningInstancesInfo": {"perRunningInstanceInfo": [{"instanceId": 0, "cpuUsage": 50.0}]}},
    })
    assert (snap.running_core_count, snap.execution_time_seconds, snap.labels) == (8, 86400.0, (("a", "2"), ("z", "1")))
    assert snap.elastic.max_total_slots == 4 and snap.errors == ("boom",)


@given(field=st.sampled_from(["runningCoreCount", "runningInstanceCount", "queuedOrRunningTaskInstancesCount"]),
       value=st.one_of(st.text(), st.lists(st.integers()), st.floats().filter(lambda f: not f.is_integer())))
def test_wrong_types_are_rejected_naming_the_field(field, value):
    with pytest.raises(BadDocument, match=field):
        parse_pool({"uuid": "u", "state": "Submitted", field: value})
