"""Back-test scores: exact hand-computed scenarios and properties."""
import pytest
from hypothesis import given, settings, strategies as st

from policies.backtest import backtest, baselines, peak_demand, replay, score, weighted_quantiles
from policies.settings import ElasticSettings
from policies.traces import Trace

import numpy as np


def test_single_burst_exact_cost_waits_and_spec_metrics():
    # window 10..3910 (last finish + 1 h); tick at 10 asks 5 slots, ready at 70, busy to 370,
    # idle 120 s then released at the tick on 550
    run = replay(Trace(((10.0, 5, 300.0),)), ElasticSettings(0, 10, 0, 120, 1.0, 90))
    s = score(run, slo_seconds=30, cores_per_slot=4)
    assert (s.slot_hours, s.idle_slot_hours, s.core_hours) == pytest.approx((2400 / 3600, 900 / 3600, 9600 / 3600))
    assert (s.wait_p50, s.wait_p95, s.wait_max, s.share_over_slo, s.instances) == (60, 60, 60, 1.0, 5)
    assert s.under_accuracy == pytest.approx(100 * 60 / 3900)          # 5 of 5 missing for 60 s
    assert s.over_accuracy == pytest.approx(100 * 5 * 180 / 3900)      # 5 idle slots over zero demand, 180 s
    assert (s.under_timeshare, s.over_timeshare) == pytest.approx((100 * 60 / 3900, 100 * 180 / 3900))


def test_idle_pool_pays_its_minimum_and_nothing_waits():
    s = backtest(Trace(((0.0, 1, 0.0),)), ElasticSettings(2, 4, 0, 0, 1.0, 60))
    assert s.slot_hours == pytest.approx(2 * (3600 - 60) / 3600)
    assert (s.wait_max, s.under_timeshare) == (60, pytest.approx(100 * 60 / 3600))


def test_pool_pinned_at_its_maximum_queues_and_counts_starved_work():
    s = backtest(Trace(((0.0, 10, 100.0),)), ElasticSettings(0, 2, 0, 0, 1.0, 60))
    assert (s.wait_p50, s.wait_max) == (260, 460) and s.slot_hours == pytest.approx(2 * 540 / 3600)
    starved = replay(Trace(((0.0, 10, 100.0),)), ElasticSettings(0, 1, 0, 0, 1.0, 60), end=300)
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
                  resize_factor=st.sampled_from([0.5, 1.0]), resize_period=st.sampled_from([30, 90]))


@settings(max_examples=80, deadline=None)
@given(traces, knobs, st.integers(1, 20))
def test_more_max_slots_never_increases_the_worst_wait(trace, knob, extra):
    more = knob.with_(max_total_slots=knob.max_total_slots + extra)
    assert backtest(trace, more).wait_max <= backtest(trace, knob).wait_max


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
