"""The pool model: hand-computed scenarios with exact numbers, policy switches, and invariants."""
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import policies
import policies.model

from policies.model import ModelConstants, PoolModel
from policies.scaling import (DAYS, LEGACY_POLICY_NAME, MONDAY, WEEK, Always, FixedPolicy, ManagedTasksQueuePolicy,
                              Scaling, Weekly)
from policies.settings import ElasticSettings, InvalidSettings


def run(settings, arrivals, until, delay=60.0, **options):
    waits, timeline = [], []
    model = PoolModel(settings, 0.0, ModelConstants(startup_delay=delay), waits=waits, timeline=timeline, **options)
    for arrival in arrivals:
        model.submit(*arrival)
    model.advance(until)
    return model, sorted(waits)


def test_a_single_burst():
    # tick at 90 asks for 5 slots (billed from then), ready at 150; work runs 150..450; idle slots go at
    # the tick after 570
    model, waits = run(ElasticSettings(0, 10, 0, 120, 1.0, 90), [(10, 5, 300)], 2000)
    assert waits == [(140.0, 5)]
    assert (model.slot_seconds, model.ready_seconds, model.busy_seconds, model.ready) == \
        (5 * (630 - 90), 5 * (630 - 150), 5 * 300, 0)


def test_an_idle_pool_keeps_its_minimum_and_pays_for_its_start():
    model, waits = run(ElasticSettings(2, 10, 0, 0, 1.0, 90), [], 3600)
    assert waits == [] and model.ready == 2 and model.busy_seconds == 0
    assert (model.slot_seconds, model.ready_seconds) == (2 * 3600, 2 * (3600 - 60))


def test_a_pool_pinned_at_its_maximum_queues_the_rest():
    model, waits = run(ElasticSettings(0, 2, 0, 0, 1.0, 90), [(0, 10, 100)], 2000)
    assert waits == [(60.0, 2), (160.0, 2), (260.0, 2), (360.0, 2), (460.0, 2)]
    # work ends at 560, the slots go at the next tick (630)
    assert (model.slot_seconds, model.busy_seconds, model.ready) == (2 * 630, 1000, 0)


def slots_at_ticks(settings, arrivals, ticks, constants=ModelConstants(), changes=()):
    """ready + starting just after each tick."""
    model = PoolModel(settings, 0.0, constants)
    for arrival in arrivals:
        model.submit(*arrival)
    out = []
    for t in ticks:
        for at, new in changes:
            if at == t:
                model.set_settings(at, new)
        model.advance(t)
        out.append(model.ready + model.starting)
    return out


TICKS = [0, 90, 180, 270, 360, 450]
GROWTH = {  # name: (settings, arrivals, slots after each tick)
    "factor 0.2 of max 100 adds 20 per period": (ElasticSettings(0, 100, 0, 0, 0.2, 90), [(0, 100, 10_000)],
                                                 [20, 40, 60, 80, 100, 100]),
    "the step never exceeds the gap to target": (ElasticSettings(0, 100, 0, 0, 0.2, 90), [(0, 30, 10_000)],
                                                [20, 30, 30, 30, 30, 30]),
    "the step is a share of max, not of the gap": (ElasticSettings(0, 8, 0, 0, 0.5, 90), [(0, 8, 10_000)],
                                                  [4, 8, 8, 8, 8, 8]),
    "min idle slots are a target like queued work": (ElasticSettings(0, 10, 3, 0, 0.1, 90), [],
                                                     [1, 2, 3, 3, 3, 3]),
    "min total slots ramp with the same step": (ElasticSettings(5, 10, 0, 0, 0.2, 90), [], [2, 4, 5, 5, 5, 5]),
}


@pytest.mark.parametrize("name", GROWTH)
def test_scale_up_step(name):
    settings, arrivals, expected = GROWTH[name]
    assert slots_at_ticks(settings, arrivals, TICKS) == expected


FULL = ElasticSettings(100, 100, 0, 0, 0.2, 90)       # reaches 100 slots at 360, all ready at 420
ELASTIC = ElasticSettings(0, 100, 0, 0, 0.2, 90)
RELEASE_TICKS = [600, 690, 780, 870, 960, 1050]
RELEASE = {  # name: (new settings at 600, model constants, slots after each tick)
    "by default the release step equals the scale-up step": (ELASTIC, ModelConstants(), [80, 60, 40, 20, 0, 0]),
    "release_factor configures the release step": (ELASTIC, ModelConstants(release_factor=0.5),
                                                   [50, 0, 0, 0, 0, 0]),
    "never below min total slots": (ElasticSettings(30, 100, 0, 0, 0.2, 90), ModelConstants(),
                                    [80, 60, 40, 30, 30, 30]),
    "never below min idle slots": (ElasticSettings(0, 100, 45, 0, 0.2, 90), ModelConstants(),
                                   [80, 60, 45, 45, 45, 45]),
    # slots became idle in groups of 20 at 60, 150, 240, 330 and 420 (as they booted)
    "only slots idle for min idle time go, oldest first": (ElasticSettings(0, 100, 0, 600, 0.2, 90),
                                                           ModelConstants(release_factor=1.0),
                                                           [100, 80, 60, 40, 20, 0]),
}


@pytest.mark.parametrize("name", RELEASE)
def test_scale_down_step(name):
    new, constants, expected = RELEASE[name]
    slots = slots_at_ticks(FULL, [], [420] + RELEASE_TICKS, constants, changes=[(600, new)])
    assert slots == [100] + expected


def test_a_slot_released_before_work_arrives_still_costs_its_start_and_restarting_pays_again():
    model = PoolModel(ElasticSettings(1, 10, 0, 0, 1.0, 90), 0.0, waits=(waits := []))
    model.set_settings(30, ElasticSettings(0, 10, 0, 0, 1.0, 90))   # unwanted while still starting
    model.advance(500)
    # starting 0..60 (billed), ready 60..120, released at the first tick once idle (120)
    assert (model.slot_seconds, model.ready_seconds, model.ready) == (120, 60, 0)
    model.submit(1000, 1, 100)
    model.advance(2000)
    # requested at the tick 1020, ready 1080, busy to 1180, released at the tick 1200
    assert waits == [(80.0, 1)]
    assert (model.slot_seconds, model.ready_seconds, model.busy_seconds) == (120 + 180, 60 + 120, 100)


@pytest.mark.parametrize("period,accepted", [(30, False), (60, False), (89, False), (90, True), (300, True)])
def test_a_resize_period_below_90_seconds_is_rejected(period, accepted):
    settings = ElasticSettings(0, 10, 0, 0, 1.0, period)
    assert (settings.problems() == []) is accepted
    if accepted:
        PoolModel(settings, 0.0)
    else:
        assert "at least 90 seconds" in settings.problems()[0]
        with pytest.raises(InvalidSettings):
            PoolModel(settings, 0.0)


# -- scaling documents: periods and policy switches ------------------------------------------------
H = 3600
WEEK_0 = MONDAY + 2900 * WEEK          # a Monday 00:00 UTC (2025-08-04): model times are epoch seconds
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = Scaling((FixedPolicy("office", 10, (Weekly(WEEKDAYS, 8 * H, 18 * H),)),
                  ManagedTasksQueuePolicy("default", 0, 50, 0, 0, 0.2)))
WEEKEND = Scaling((FixedPolicy("weekend", 5, (Weekly(("sunday",), 22 * H, 2 * H),)),
                   ManagedTasksQueuePolicy("default", 0, 50, 1, 0, 0.2)))


def switching(scaling, start, **options):
    switches = []
    model = PoolModel(scaling, start, on_policy=lambda *change: switches.append(change), **options)
    return model, switches


def test_a_weekly_fixed_policy_holds_its_slots_inside_its_window_and_elastic_rules_apply_after():
    model, switches = switching(OFFICE, WEEK_0 + 7 * H)
    seen = {}
    for at in (7 * H + 30, 8 * H - 1, 8 * H, 8 * H + 60, 12 * H, 18 * H - 1, 18 * H, 18 * H + 1, 19 * H):
        model.advance(WEEK_0 + at)
        seen[at] = (model.active_policy_name, model.starting, model.ready)
    assert seen == {
        7 * H + 30: ("default", 0, 0), 8 * H - 1: ("default", 0, 0),
        8 * H: ("office", 10, 0),              # the whole gap at once, at the boundary
        8 * H + 60: ("office", 0, 10), 12 * H: ("office", 0, 10), 18 * H - 1: ("office", 0, 10),
        18 * H: ("default", 0, 0),             # idle slots go at once: idle time 0, release step 10
        18 * H + 1: ("default", 0, 0), 19 * H: ("default", 0, 0)}
    assert switches == [(WEEK_0 + 8 * H, "default", "office"), (WEEK_0 + 18 * H, "office", "default")]
    assert model.slot_seconds == 10 * 10 * H


def test_queued_work_does_not_grow_a_fixed_window_and_elastic_growth_resumes_after_it():
    model, _ = switching(OFFICE, WEEK_0 + 17 * H)
    model.submit(WEEK_0 + 17 * H, 30, 4 * H)                    # 30 instances of 4 hours at 17:00
    slots = {}
    for at in (17 * H, 17 * H + 90, 18 * H - 1, 18 * H, 18 * H + 90, 18 * H + 180):
        model.advance(WEEK_0 + at)
        slots[at] = (model.active_policy_name, model.ready + model.starting)
    # Fixed 10 until 18:00 whatever the queue; then the default grows by ceil(0.2 x 50) = 10 per period
    assert slots == {17 * H: ("office", 10), 17 * H + 90: ("office", 10), 18 * H - 1: ("office", 10),
                     18 * H: ("default", 20), 18 * H + 90: ("default", 30), 18 * H + 180: ("default", 30)}


def test_a_window_crossing_the_week_boundary_switches_exactly_at_its_ends():
    sunday = WEEK_0 + 6 * 86400
    model, switches = switching(WEEKEND, sunday + 21 * H)
    names = {}
    for at in (21 * H, 22 * H - 1, 22 * H, 24 * H - 1, 24 * H, 26 * H - 1, 26 * H, 27 * H):
        model.advance(sunday + at)
        names[at] = (model.active_policy_name, model.ready + model.starting)
    assert names == {21 * H: ("default", 1), 22 * H - 1: ("default", 1), 22 * H: ("weekend", 5),
                     24 * H - 1: ("weekend", 5), 24 * H: ("weekend", 5), 26 * H - 1: ("weekend", 5),
                     26 * H: ("default", 1), 27 * H: ("default", 1)}
    assert switches == [(sunday + 22 * H, "default", "weekend"), (sunday + 26 * H, "weekend", "default")]


def test_the_epoch_maps_model_time_onto_the_week():
    model, switches = switching(WEEKEND, 0.0, epoch=WEEK_0)   # model time 0 is Monday 00:00
    assert model.active_policy_name == "weekend"                     # Sunday's window runs until 02:00
    model.advance(WEEK)
    assert switches == [(2 * H, "weekend", "default"), (6 * 86400 + 22 * H, "default", "weekend")]
    assert model.active_policy_name == "weekend"


def test_with_no_policy_enabled_the_pool_holds_no_slots():
    scaling = Scaling((ManagedTasksQueuePolicy("weekdays", 3, 10, 0, 0, 1.0, (Weekly(WEEKDAYS, 0, 0),)),))
    model, switches = switching(scaling, WEEK_0 + 4 * 86400 + 23 * H)   # Friday 23:00
    model.advance(WEEK_0 + 4 * 86400 + 23 * H + 600)
    assert (model.active_policy_name, model.ready) == ("weekdays", 3)
    model.advance(WEEK_0 + 6 * 86400)                                          # Sunday
    assert (model.active_policy_name, model.ready + model.starting) == (None, 0)
    assert switches == [(WEEK_0 + 5 * 86400, "weekdays", None)]


def test_set_settings_switches_between_legacy_settings_and_a_scaling_document():
    model, switches = switching(ElasticSettings(2, 10, 0, 0, 1.0, 90), WEEK_0 + 9 * H)
    assert model.active_policy_name == LEGACY_POLICY_NAME
    model.set_settings(WEEK_0 + 10 * H, OFFICE)
    model.advance(WEEK_0 + 10 * H + 60)
    assert (model.active_policy_name, model.ready + model.starting) == ("office", 10)
    assert switches == [(WEEK_0 + 10 * H, LEGACY_POLICY_NAME, "office")]


arrivals = st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 20), st.integers(1, 3000)), max_size=40)
knobs = st.builds(ElasticSettings, min_total_slots=st.integers(0, 3), max_total_slots=st.integers(3, 30),
                  min_idle_slots=st.integers(0, 3), min_idle_time_seconds=st.integers(0, 600),
                  resize_factor=st.sampled_from([0.05, 0.25, 0.5, 1.0]), resize_period=st.sampled_from([90, 300]))


@settings(max_examples=60, deadline=None)
@given(arrivals, knobs)
def test_invariants_hold_and_replays_are_deterministic(trace, knob):
    trace = sorted(trace)
    # long enough for all the work to run on the fewest slots the pool may have (max slots, one at a time)
    until = 20_000 + sum(n * d for _, n, d in trace) + 3600
    model, waits = run(knob, trace, until)
    again, waits_again = run(knob, trace, until)
    assert (model.slot_seconds, waits) == (again.slot_seconds, waits_again)
    assert model.slot_seconds >= model.ready_seconds >= model.busy_seconds - 1e-6   # billed >= ready >= busy
    assert sum(n for _, n in waits) == sum(n for _, n, _ in trace)  # everything ran by the end
    assert model.ready + model.starting <= max(knob.max_total_slots, knob.min_total_slots)
    assert all(w >= 0 for w, _ in waits)


@settings(max_examples=60, deadline=None)
@given(arrivals, knobs, st.sampled_from([None, 0.1, 1.0]))
def test_slots_stay_within_max_and_once_there_never_fall_below_min(trace, knob, release):
    model = PoolModel(knob, 0.0, ModelConstants(release_factor=release))
    for arrival in sorted(trace):
        model.submit(*arrival)
    reached = False
    for t in range(0, 40_000, 45):
        model.advance(t)
        slots = model.ready + model.starting
        reached = reached or slots >= knob.min_total_slots
        assert slots <= knob.max_total_slots and (slots >= knob.min_total_slots or not reached)


periods = st.one_of(st.just(Always()), st.builds(Weekly, st.lists(st.sampled_from(DAYS), min_size=1, max_size=3)
                                                 .map(tuple), st.integers(0, 47).map(lambda q: q * 1800),
                                                 st.integers(0, 47).map(lambda q: q * 1800)))


@st.composite
def schedules(draw):
    policies = []
    for i in range(draw(st.integers(1, 3))):
        when = tuple(draw(st.lists(periods, min_size=1, max_size=2)))
        if draw(st.booleans()):
            policies.append(FixedPolicy(f"p{i}", draw(st.integers(0, 12)), when))
        else:
            low = draw(st.integers(0, 4))
            policies.append(ManagedTasksQueuePolicy(f"p{i}", low, draw(st.integers(max(low, 1), 20)),
                                                    draw(st.integers(0, 3)), draw(st.integers(0, 600)),
                                                    draw(st.sampled_from([0.1, 0.5, 1.0])), when))
    return Scaling(tuple(policies))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 86400), st.integers(1, 20), st.integers(1, 3000)), max_size=30),
       schedules(), st.integers(0, 6))
def test_under_a_schedule_slots_stay_within_the_enabled_policys_max_and_the_bill_covers_ready_time(
        trace, scaling, day):
    start = WEEK_0 + day * 86400
    checked = []

    def heard(at, kind, old, new):
        policy = scaling.policy_at(at)
        ceiling = 0 if policy is None else getattr(policy, "slots_count", getattr(policy, "max_total_slots", 0))
        if kind == "starting" and new > old:          # a request: never beyond the enabled policy's max
            checked.append(model.ready + model.starting <= max(ceiling, model.busy))

    model = PoolModel(scaling, start, on_change=heard)
    for at, n, duration in sorted(trace):
        model.submit(start + at, n, duration)
    model.advance(start + 4 * 86400)
    assert all(checked)
    assert model.active_policy_name == (None if scaling.policy_at(start + 4 * 86400) is None
                                        else scaling.policy_at(start + 4 * 86400).name)
    assert model.slot_seconds >= model.ready_seconds >= model.busy_seconds - 1e-6


CAN_COMPILE = shutil.which("cc") and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


@pytest.mark.skipif(not CAN_COMPILE, reason="no C compiler or Python headers here: the model runs interpreted")
def test_the_installed_model_is_compiled():
    # Replays and searches are ~4x faster compiled; setup.py compiles policies/model.py with mypyc.
    assert policies.model.__file__.endswith(".so"), "reinstall with `pip install -e .` to compile the model"


@pytest.mark.skipif(not policies.model.__file__.endswith(".so"), reason="the model is not compiled here")
def test_an_edited_model_runs_from_source_not_from_its_stale_binary(tmp_path):
    package = Path(policies.__file__).parent
    shutil.copytree(package, tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "setup.py").write_text("")                         # a source checkout, as with `pip install -e .`
    edited = tmp_path / "policies" / "model.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")   # newer than the binary beside it
    out = subprocess.run([sys.executable, "-c", "import policies.model as m; print(m.EDITED, m.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", str(edited)]
    assert "run `pip install -e .` again" in out.stderr


def test_an_installed_copy_trusts_its_binary_whatever_the_files_times(tmp_path):
    """pip install . (no setup.py beside the package): file times come from the wheel, not from edits."""
    package = Path(policies.__file__).parent
    if not list(package.glob("model.*.so")):
        pytest.skip("the model is not compiled here")
    shutil.copytree(package, tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "policies" / "model.py").touch()                  # newer than the binary
    out = subprocess.run([sys.executable, "-c", "import policies.model as m; print(m.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith(".so") and "pip install" not in out.stderr
