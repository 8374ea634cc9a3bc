"""Each guardrail, by the refusal it gives."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from policies.guardrails import CommitRules, check_commit, limit_change
from policies.recommendation import Recommendation
from policies.settings import ElasticSettings

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
CURRENT = ElasticSettings(0, 40, 0, 0, 1.0, 90)
BETTER = ElasticSettings(0, 30, 1, 60, 1.0, 90)
GOOD_EVIDENCE = {"current": {"slot_hours": 100.0, "wait_p95_seconds": 150.0},
                 "recommended": {"slot_hours": 80.0, "wait_p95_seconds": 140.0}}


def decide(rec=None, state="FullyExecuting", tags=("pool-tracker-autoscale",), labels=(), current=CURRENT,
           last=None):
    rec = rec or Recommendation("search", BETTER, "cheapest_within_slo", "why", 1.0, GOOD_EVIDENCE)
    return check_commit(rec, state=state, tags=tags, labels=labels, current=current, last_commit=last, now=NOW,
                        rules=CommitRules(), slo_seconds=300)


def test_a_good_recommendation_on_an_opted_in_pool_goes_through():
    decision = decide()
    assert decision.allowed and decision.code == "ok" and decision.settings == BETTER


def test_opt_in_by_label_works_too():
    assert decide(tags=(), labels=(("pool-tracker-autoscale", "true"),)).allowed


@pytest.mark.parametrize("kwargs,code", [
    ({"tags": ()}, "not_opted_in"),
    ({"state": "Closing"}, "pool_not_running"),
    ({"state": "Failure"}, "pool_not_running"),
    ({"state": "Closed"}, "pool_not_running"),
    ({"last": NOW - timedelta(minutes=10)}, "cooldown"),
    ({"rec": Recommendation("search", None, "insufficient_history", "short", 0.0)}, "no_recommendation"),
    ({"rec": Recommendation("search", CURRENT, "x", "same", 1.0, GOOD_EVIDENCE)}, "unchanged"),
    ({"rec": Recommendation("search", BETTER, "x", "dearer", 1.0, {
        "current": {"slot_hours": 80.0, "wait_p95_seconds": 150.0},
        "recommended": {"slot_hours": 90.0, "wait_p95_seconds": 150.0}})}, "no_improvement"),
    ({"rec": Recommendation("search", BETTER, "x", "slower past the SLO", 1.0, {
        "current": {"slot_hours": 100.0, "wait_p95_seconds": 150.0},
        "recommended": {"slot_hours": 50.0, "wait_p95_seconds": 900.0}})}, "no_improvement"),
    ({"current": None}, "not_elastic"),
])
def test_each_guardrail_refuses_with_its_code(kwargs, code):
    decision = decide(**kwargs)
    assert not decision.allowed and decision.code == code and decision.reason


def test_big_changes_are_limited_per_commit():
    rec = Recommendation("search", ElasticSettings(0, 4, 0, 0, 1.0, 90), "x", "much smaller", 1.0, GOOD_EVIDENCE)
    decision = decide(rec=rec)
    assert decision.allowed and decision.code == "limited" and decision.settings.max_total_slots == 20


knobs = st.builds(ElasticSettings, min_total_slots=st.integers(0, 50), max_total_slots=st.integers(50, 500),
                  min_idle_slots=st.integers(0, 20), min_idle_time_seconds=st.integers(0, 3600),
                  resize_factor=st.floats(0.05, 1.0), resize_period=st.integers(1, 900))


@given(knobs, knobs, st.floats(0.05, 1.0))
def test_limited_settings_are_valid_and_within_the_allowed_step(current, wanted, share):
    limited = limit_change(current, wanted, share)
    assert limited.problems() == []
    assert abs(limited.max_total_slots - current.max_total_slots) <= max(current.max_total_slots * share, 1) + 1


def test_a_static_pool_stays_static_in_every_recommendation_and_so_never_looks_changed():
    from policies.recommendation import clamp_settings

    static = ElasticSettings(4, 4, 0, 0, 1.0, 90, is_elastic=False)
    assert clamp_settings(static) == static and clamp_settings(static, max_total_slots=8).is_elastic is False
