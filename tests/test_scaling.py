"""Scaling documents: the API's JSON both ways, the errors a user sees, first-match and period boundaries."""
import calendar
import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from policies.scaling import (DAYS, LEGACY_POLICY_NAME, Always, FixedPolicy, InvalidScaling,
                              ManagedTasksQueuePolicy, Scaling, Weekly)
from policies.settings import ElasticSettings, InvalidSettings

H = 3600


def epoch(text):
    """"2025-08-04 08:00:00" (UTC) -> epoch seconds, through the standard library's calendar."""
    return float(calendar.timegm(dt.datetime.fromisoformat(text).timetuple()))


DOCUMENT = {
    "policies": [
        {"type": "Fixed", "name": "night-batch", "slotsCount": 12,
         "enabledPeriods": [{"type": "Weekly", "name": "nights", "days": ["monday", "tuesday"],
                             "startTimeUtc": "22:00:00", "endTimeUtc": "06:30:00"}]},
        {"type": "ManagedTasksQueue", "name": "default", "minTotalSlots": 0, "maxTotalSlots": 40,
         "minIdleSlots": 1, "minIdleTimeSeconds": 90, "scalingFactor": 0.2, "enabledPeriods": [{"type": "Always"}]},
    ],
    "activePolicyName": "default",
}


def test_a_document_parses_to_values_and_serialises_back_unchanged():
    scaling = Scaling.from_api(DOCUMENT)
    assert scaling == Scaling((
        FixedPolicy("night-batch", 12, (Weekly(("monday", "tuesday"), 22 * H, 6 * H + 1800, "nights"),)),
        ManagedTasksQueuePolicy("default", 0, 40, 1, 90, 0.2, (Always(),))), "default")
    assert scaling.to_api() == DOCUMENT
    assert hash(scaling) == hash(Scaling.from_api(DOCUMENT)) and len({scaling, Scaling.from_api(DOCUMENT)}) == 1


def broken(path, value):
    """DOCUMENT with the field at `path` (keys and indexes) set to `value`, or removed when value is ...."""
    import copy
    doc = copy.deepcopy(DOCUMENT)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return doc


BAD = {  # name: (document, the field the error names)
    "not an object": ([], "scaling"),
    "policies missing": ({"activePolicyName": "x"}, "policies"),
    "unknown policy type": (broken(("policies", 0, "type"), "Elastic"), "policies[0].type"),
    "name missing": (broken(("policies", 1, "name"), ...), "policies[1].name"),
    "negative slots count": (broken(("policies", 0, "slotsCount"), -1), "policies[0].slotsCount"),
    "slots count as text": (broken(("policies", 0, "slotsCount"), "12"), "policies[0].slotsCount"),
    "slots count as a boolean": (broken(("policies", 0, "slotsCount"), True), "policies[0].slotsCount"),
    "negative max": (broken(("policies", 1, "maxTotalSlots"), -3), "policies[1].maxTotalSlots"),
    "min above max": (broken(("policies", 1, "minTotalSlots"), 41), "policies[1].minTotalSlots"),
    "idle time missing": (broken(("policies", 1, "minIdleTimeSeconds"), ...), "policies[1].minIdleTimeSeconds"),
    "factor zero": (broken(("policies", 1, "scalingFactor"), 0), "policies[1].scalingFactor"),
    "factor above one": (broken(("policies", 1, "scalingFactor"), 1.5), "policies[1].scalingFactor"),
    "factor as text": (broken(("policies", 1, "scalingFactor"), "0.2"), "policies[1].scalingFactor"),
    "periods missing": (broken(("policies", 1, "enabledPeriods"), ...), "policies[1].enabledPeriods"),
    "unknown period type": (broken(("policies", 1, "enabledPeriods", 0, "type"), "Daily"),
                            "policies[1].enabledPeriods[0].type"),
    "unknown day": (broken(("policies", 0, "enabledPeriods", 0, "days", 1), "funday"),
                    "policies[0].enabledPeriods[0].days[1]"),
    "hour 24": (broken(("policies", 0, "enabledPeriods", 0, "startTimeUtc"), "24:00:00"),
                "policies[0].enabledPeriods[0].startTimeUtc"),
    "time without seconds": (broken(("policies", 0, "enabledPeriods", 0, "endTimeUtc"), "06:30"),
                             "policies[0].enabledPeriods[0].endTimeUtc"),
    "two policies of one name": (broken(("policies", 1, "name"), "night-batch"), "policies[1].name"),
    "active name not a string": (broken(("activePolicyName",), 3), "activePolicyName"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_documents_are_refused_naming_the_field(name):
    document, field = BAD[name]
    with pytest.raises(InvalidScaling) as info:
        Scaling.from_api(document)
    assert info.value.field == field and str(info.value).startswith(field + ": ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidSettings)


def test_the_legacy_elastic_property_is_one_always_managed_tasks_queue_policy():
    scaling = Scaling.from_elastic(ElasticSettings(2, 30, 1, 300, 0.5, 180))
    assert scaling == Scaling((ManagedTasksQueuePolicy(LEGACY_POLICY_NAME, 2, 30, 1, 300, 0.5, (Always(),)),))
    assert scaling.policy_at(epoch("2025-08-04 12:00:00")).name == LEGACY_POLICY_NAME
    assert scaling.next_change_after(0.0) == float("inf")


WORK_HOURS = Weekly(("monday", "tuesday", "wednesday", "thursday", "friday"), 8 * H, 18 * H)
WEEKEND = Weekly(("saturday",), 0, 0)                           # end == start: all of Saturday
NIGHT = Weekly(("sunday",), 22 * H, 2 * H)                      # wraps into Monday 02:00
FIRST_MATCH = {  # name: (scaling, time, active policy name)
    "a window's first second is inside": (Scaling((FixedPolicy("work", 5, (WORK_HOURS,)),
                                                   FixedPolicy("rest", 0))), "2025-08-04 08:00:00", "work"),
    "a window's end is outside": (Scaling((FixedPolicy("work", 5, (WORK_HOURS,)), FixedPolicy("rest", 0))),
                                  "2025-08-04 18:00:00", "rest"),
    "an unlisted day is outside": (Scaling((FixedPolicy("work", 5, (WORK_HOURS,)), FixedPolicy("rest", 0))),
                                   "2025-08-09 12:00:00", "rest"),
    "the first enabled policy wins": (Scaling((FixedPolicy("a", 1), FixedPolicy("b", 2))), "2025-08-04 12:00:00",
                                      "a"),
    "a later window never beats an earlier Always": (Scaling((FixedPolicy("always", 1),
                                                              FixedPolicy("work", 5, (WORK_HOURS,)))),
                                                     "2025-08-04 12:00:00", "always"),
    "any of a policy's periods enables it": (Scaling((FixedPolicy("off-hours", 1, (WEEKEND, NIGHT)),
                                                      FixedPolicy("rest", 0))), "2025-08-09 23:59:59", "off-hours"),
    "end equal to start is a whole day": (Scaling((FixedPolicy("sat", 1, (WEEKEND,)),)), "2025-08-09 00:00:00",
                                          "sat"),
    "a wrapping window covers the next morning": (Scaling((FixedPolicy("night", 1, (NIGHT,)),)),
                                                  "2025-08-11 01:59:59", "night"),
    "a wrapping window ends on the next day": (Scaling((FixedPolicy("night", 1, (NIGHT,)),)),
                                               "2025-08-11 02:00:00", None),
    "nothing enabled: no policy": (Scaling((FixedPolicy("work", 5, (WORK_HOURS,)),)), "2025-08-10 12:00:00", None),
    "no policies at all": (Scaling(()), "2025-08-10 12:00:00", None),
    "dates before 1970-01-05 still have weekdays": (Scaling((FixedPolicy("thu", 1, (Weekly(("thursday",), 0, H),)),)),
                                                    "1970-01-01 00:30:00", "thu"),
}


@pytest.mark.parametrize("name", FIRST_MATCH)
def test_the_first_enabled_policy_applies(name):
    scaling, when, expected = FIRST_MATCH[name]
    policy = scaling.policy_at(epoch(when))
    assert (policy and policy.name) == expected


NEXT = {  # name: (periods, after, next boundary)
    "start later today": ((WORK_HOURS,), "2025-08-04 07:00:00", "2025-08-04 08:00:00"),
    "strictly after a boundary": ((WORK_HOURS,), "2025-08-04 08:00:00", "2025-08-04 18:00:00"),
    "over the weekend to Monday": ((WORK_HOURS,), "2025-08-08 18:00:00", "2025-08-11 08:00:00"),
    "a wrapping window ends next day": ((NIGHT,), "2025-08-10 22:00:00", "2025-08-11 02:00:00"),
    "across the week boundary": ((NIGHT,), "2025-08-11 02:00:00", "2025-08-17 22:00:00"),
    "fractional times": ((WORK_HOURS,), "2025-08-04 07:59:59", "2025-08-04 08:00:00"),
}


@pytest.mark.parametrize("name", NEXT)
def test_the_next_boundary(name):
    periods, after, expected = NEXT[name]
    scaling = Scaling((FixedPolicy("p", 1, periods),))
    assert scaling.next_change_after(epoch(after) + (0.5 if name == "fractional times" else 0)) == epoch(expected)


times = st.integers(0, 86399)
periods = st.one_of(
    st.builds(Always, st.none() | st.text(max_size=8)),
    st.builds(Weekly, st.lists(st.sampled_from(DAYS), max_size=7).map(tuple), times, times,
              st.none() | st.text(max_size=8)))
policies = st.one_of(
    st.builds(FixedPolicy, st.text(max_size=8), st.integers(0, 10_000), st.lists(periods, max_size=3).map(tuple)),
    st.integers(0, 500).flatmap(lambda low: st.builds(
        ManagedTasksQueuePolicy, st.text(max_size=8), st.just(low), st.integers(low, 1000), st.integers(0, 50),
        st.integers(0, 86400), st.floats(0, 1, exclude_min=True), st.lists(periods, max_size=3).map(tuple))))
documents = st.builds(Scaling, st.lists(policies, max_size=4, unique_by=lambda p: p.name).map(tuple),
                      st.none() | st.text(max_size=8))


@settings(max_examples=200, deadline=None)
@given(documents)
def test_json_round_trip(scaling):
    body = scaling.to_api()
    assert Scaling.from_api(body) == scaling and Scaling.from_api(body).to_api() == body


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(-10 * 86400 * 7, 3_000_000_000))
def test_the_active_policy_only_changes_at_a_boundary(scaling, at):
    """Between `at` and the next boundary the active policy holds; just past it, time of week is consistent."""
    boundary = scaling.next_change_after(at)
    active = scaling.policy_at(at)
    if boundary == float("inf"):
        assert all(scaling.policy_at(at + k * 86400 / 7) == active for k in range(50))
        return
    assert at < boundary <= at + 7 * 86400
    for fraction in (0.25, 0.5, 0.999):
        assert scaling.policy_at(at + (boundary - at) * fraction) == active
    assert scaling.policy_at(boundary) == scaling.policy_at(boundary + 7 * 86400)   # weekly


def test_day_names_in_any_case_and_fractional_seconds_read_as_the_sdk_reads_them():
    body = {"policies": [{"type": "Fixed", "name": "office", "slotsCount": 4, "enabledPeriods": [
        {"type": "Weekly", "days": ["Monday", "FRIDAY"], "startTimeUtc": "08:00:00.000000", "endTimeUtc": "18:00:00"}]}]}
    period = Scaling.from_api(body).to_api()["policies"][0]["enabledPeriods"][0]
    assert period["days"] == ["monday", "friday"] and period["startTimeUtc"] == "08:00:00"
