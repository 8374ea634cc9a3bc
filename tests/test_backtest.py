"""Back-test scores: exact hand-computed scenarios and properties."""
import pytest
from hypothesis import given, settings, strategies as st

from policies.backtest import backtest, baselines, peak_demand, replay, score, weighted_quantiles
from policies.scaling import MONDAY, WEEK, FixedPolicy, ManagedTasksQueuePolicy, Scaling, Weekly
from policies.settings import ElasticSettings
from policies.traces import Trace

import numpy as np


def test_single_burst_exact_cost_waits_and_spec_metrics():
    # window 10..3910 (last finish + 1 h); tick at 10 asks 5 slots (billed from then), ready at 70, busy
    # to 370, idle 120 s then released at the tick on 550
    run = replay(Trace(((10.0, 5, 300.0),)), ElasticSettings(0, 10, 0, 120, 1.0, 90))
    s = score(run, slo_seconds=30, cores_per_slot=4)
    assert (s.slot_hours, s.idle_slot_hours, s.core_hours) == \
        pytest.approx((5 * 540 / 3600, (5 * 540 - 1500) / 3600, 4 * 5 * 540 / 3600))
    assert (s.wait_p50, s.wait_p95, s.wait_max, s.share_over_slo, s.instances) == (60, 60, 60, 1.0, 5)
    assert s.under_accuracy == pytest.approx(100 * 60 / 3900)          # 5 of 5 missing for 60 s
    assert s.over_accuracy == pytest.approx(100 * 5 * 180 / 3900)      # 5 idle slots over zero demand, 180 s
    assert (s.under_timeshare, s.over_timeshare) == pytest.approx((100 * 60 / 3900, 100 * 180 / 3900))


def test_idle_pool_pays_its_minimum_from_its_start_and_nothing_waits():
    s = backtest(Trace(((0.0, 1, 0.0),)), ElasticSettings(2, 4, 0, 0, 1.0, 90))
    assert s.slot_hours == pytest.approx(2 * 3600 / 3600)
    assert (s.wait_max, s.under_timeshare) == (60, pytest.approx(100 * 60 / 3600))


def test_pool_pinned_at_its_maximum_queues_and_counts_starved_work():
    s = backtest(Trace(((0.0, 10, 100.0),)), ElasticSettings(0, 2, 0, 0, 1.0, 90))
    # two slots billed from the tick at 0 until the tick at 630, after the work ends at 560
    assert (s.wait_p50, s.wait_max) == (260, 460) and s.slot_hours == pytest.approx(2 * 630 / 3600)
    starved = replay(Trace(((0.0, 10, 100.0),)), ElasticSettings(0, 1, 0, 0, 1.0, 90), end=300)
    assert sorted(starved.waits) == [60, 160, 260, 300]                # 7 never started: waited 300 s so far
    assert starved.counts[np.argmax(starved.waits)] == 7


def test_weighted_quantiles_and_peak_demand():
    values, weights = np.array([9.0, 1.0, 5.0]), np.array([1, 1, 8])     # nearest rank of 10 values
    assert weighted_quantiles(values, weights, (0.1, 0.5, 0.9, 0.95)) == [1, 5, 5, 9]
    assert peak_demand(Trace(((0.0, 3, 10.0), (10.0, 2, 5.0), (5.0, 4, 1.0)))) == 7
    assert baselines(Trace(((0.0, 3, 10.0),)))["static-at-peak"].max_total_slots == 3


traces = st.lists(st.tuples(st.integers(0, 7200).map(float), st.integers(1, 12), st.integers(10, 2400).map(float)),
                  min_size=1, max_size=25).map(lambda rows: Trace(tuple(sorted(rows))))
knobs = st.builds(ElasticSettings, min_total_slots=st.integers(0, 2), max_total_slots=st.integers(2, 20),
                  min_idle_slots=st.integers(0, 2), min_idle_time_seconds=st.integers(0, 900),
                  resize_factor=st.sampled_from([0.5, 1.0]), resize_period=st.sampled_from([90, 150]))


@settings(max_examples=80, deadline=None)
@given(traces, knobs, st.integers(1, 20))
def test_while_nothing_is_released_more_max_slots_never_increases_the_worst_wait(trace, knob, extra):
    knob = knob.with_(min_idle_time_seconds=10**6)     # no release inside the window: see the next test
    more = knob.with_(max_total_slots=knob.max_total_slots + extra)
    assert backtest(trace, more).wait_max <= backtest(trace, knob).wait_max


def test_a_larger_max_also_releases_faster_so_a_later_task_can_wait_longer():
    # Steps are shares of maxTotalSlots both ways: max 6 at factor 0.5 moves 3 slots per period, max 7
    # moves 4. Both serve the burst of 7 at 0; when it is done, max 7 has released all 4 slots by the tick
    # at 300 and the task at 301 waits for the tick at 450 plus start-up; max 6 kept one slot for it.
    trace = Trace(((0.0, 7, 46.0), (301.0, 1, 10.0)))
    six, seven = (replay(trace, ElasticSettings(0, mx, 0, 0, 0.5, 150)) for mx in (6, 7))
    assert sorted(zip(six.waits, six.counts)) == [(0, 1), (60, 3), (106, 3), (152, 1)]
    assert sorted(zip(seven.waits, seven.counts)) == [(60, 4), (106, 3), (209, 1)]


@settings(max_examples=60, deadline=None)
@given(traces, knobs)
def test_cost_never_below_busy_time_and_scores_are_deterministic(trace, knob):
    run = replay(trace, knob, timeline=True)
    first, second = score(run), backtest(trace, knob)
    assert first == second and first.slot_hours >= run.busy_seconds / 3600 - 1e-9
    work = sum(n * d for _, n, d in trace.arrivals)
    assert run.busy_seconds <= work + 1e-6
    if run.timeline[-1][1] == 0:                   # everything finished inside the window
        assert run.busy_seconds == pytest.approx(work)
    assert 0 <= first.under_timeshare + first.over_timeshare <= 100 + 1e-9


def spec_metrics_from_timeline(run):
    """The SPEC metrics integrated from the recorded step function: an independent check of the model's sums."""
    t, d, s = run.timeline[:, 0], run.timeline[:, 1], run.timeline[:, 2]
    dt, d0, s0, span = np.diff(t), d[:-1], s[:-1], run.end - run.start
    grid = np.arange(run.start, run.end, run.settings.resize_period)
    at = np.searchsorted(t, grid, side="right") - 1
    moved_differently = np.sign(np.diff(d[at])) != np.sign(np.diff(s[at]))
    return (100 * np.sum(np.maximum(d0 - s0, 0) / np.maximum(d0, 1) * dt) / span,
            100 * np.sum(np.maximum(s0 - d0, 0) / np.maximum(d0, 1) * dt) / span,
            100 * np.sum(dt[d0 > s0]) / span, 100 * np.sum(dt[s0 > d0]) / span,
            100 * np.mean(moved_differently) if len(grid) >= 3 else 0.0)


@settings(max_examples=80, deadline=None)
@given(traces, knobs, knobs, st.floats(0, 9000))
def test_spec_metrics_kept_while_running_match_the_recorded_timeline(trace, knob, later, switch_at):
    run = replay(trace, knob, timeline=True, changes=[(switch_at, later)])
    s = score(run)
    assert (s.under_accuracy, s.over_accuracy, s.under_timeshare, s.over_timeshare, s.instability) == \
        pytest.approx(spec_metrics_from_timeline(run), abs=1e-9)


# -- scaling documents as candidates ----------------------------------------------------------------
MONDAY_MORNING = Scaling((FixedPolicy("monday-morning", 2, (Weekly(("monday",), 0, 3600),)),))   # else 0 slots
A_MONDAY = MONDAY + 2900 * WEEK                                                       # 2025-08-04 00:00 UTC


@pytest.mark.parametrize("name,trace,epoch,slot_hours,wait", [
    ("a relative trace starts on Monday 00:00 UTC", Trace(((0.0, 1, 0.0),)), None, 2.0, 60),
    ("a trace of epoch times runs on its own dates", Trace(((A_MONDAY, 1, 0.0),)), None, 2.0, 60),
    ("the same trace on a Tuesday finds no policy enabled", Trace(((0.0, 1, 0.0),)), MONDAY + 86400, 0.0, 3600),
])
def test_a_scaling_candidate_runs_with_its_weekly_periods(name, trace, epoch, slot_hours, wait):
    # window: the arrival to an hour later; the Fixed policy holds 2 slots (billed from the first second)
    s = backtest(trace, MONDAY_MORNING, epoch=epoch)
    assert (s.slot_hours, s.wait_max) == (pytest.approx(slot_hours), wait)


def test_a_schedule_switches_policy_inside_the_window():
    # Fixed 4 slots Monday 08:00-09:00, otherwise elastic up to 8 with idle time 0: a task of 2 two-hour
    # instances at 07:30 runs on 2 elastic slots from 07:31; at 08:00 the pool goes to 4 (2 more, idle),
    # at 09:00 back to the 2 busy ones, released at the first tick (grid from 09:00) after 09:31
    scaling = Scaling((FixedPolicy("rush", 4, (Weekly(("monday",), 8 * 3600, 9 * 3600),)),
                       ManagedTasksQueuePolicy("default", 0, 8, 0, 0, 1.0)))
    run = replay(Trace(((7.5 * 3600, 2, 7200.0),)), scaling, end=10 * 3600)
    assert run.slot_seconds == 2 * (9 * 3600 + 1890 - 7.5 * 3600) + 2 * 3600
    assert run.busy_seconds == 2 * 7200 and sorted(run.waits) == [60]


@settings(max_examples=40, deadline=None)
@given(traces, knobs.map(lambda k: k.with_(resize_period=90)))
def test_legacy_settings_and_their_scaling_mapping_score_the_same(trace, knob):
    assert backtest(trace, knob) == backtest(trace, Scaling.from_elastic(knob))
