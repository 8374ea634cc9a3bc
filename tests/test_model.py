"""The elastic pool model: hand-computed scenarios with exact numbers, and invariants."""
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import policies
import policies.model

from policies.model import PoolModel
from policies.settings import ElasticSettings


def run(settings, arrivals, until, delay=60.0):
    waits, timeline = [], []
    model = PoolModel(settings, 0.0, delay, waits=waits, timeline=timeline)
    for arrival in arrivals:
        model.submit(*arrival)
    model.advance(until)
    return model, sorted(waits)


def test_a_single_burst():
    # tick at 90 asks for 5 slots, ready at 150; work runs 150..450; idle slots go at the tick after 570
    model, waits = run(ElasticSettings(0, 10, 0, 120, 1.0, 90), [(10, 5, 300)], 2000)
    assert waits == [(140.0, 5)]
    assert (model.slot_seconds, model.busy_seconds, model.ready) == (5 * (630 - 150), 5 * 300, 0)


def test_an_idle_pool_keeps_its_minimum():
    model, waits = run(ElasticSettings(2, 10, 0, 0, 1.0, 90), [], 3600)
    assert waits == [] and model.ready == 2 and model.slot_seconds == 2 * (3600 - 60) and model.busy_seconds == 0


def test_a_pool_pinned_at_its_maximum_queues_the_rest():
    model, waits = run(ElasticSettings(0, 2, 0, 0, 1.0, 60), [(0, 10, 100)], 2000)
    assert waits == [(60.0, 2), (160.0, 2), (260.0, 2), (360.0, 2), (460.0, 2)]
    assert (model.slot_seconds, model.busy_seconds, model.ready) == (2 * (600 - 60), 1000, 0)


def test_resize_factor_ramps_up_in_steps():
    model, _ = run(ElasticSettings(0, 8, 0, 0, 0.5, 60), [(0, 8, 10_000)], 200)
    # requests 4 at t=0, 2 at 60, 1 at 120, 1 at 180; each ready 60 s later
    assert (model.ready, model.starting) == (7, 1)


arrivals = st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 20), st.integers(1, 3000)), max_size=40)
knobs = st.builds(ElasticSettings, min_total_slots=st.integers(0, 3), max_total_slots=st.integers(3, 30),
                  min_idle_slots=st.integers(0, 3), min_idle_time_seconds=st.integers(0, 600),
                  resize_factor=st.sampled_from([0.25, 0.5, 1.0]), resize_period=st.sampled_from([30, 90, 300]))


@settings(max_examples=60, deadline=None)
@given(arrivals, knobs)
def test_invariants_hold_and_replays_are_deterministic(trace, knob):
    trace = sorted(trace)
    model, waits = run(knob, trace, 40_000)
    again, waits_again = run(knob, trace, 40_000)
    assert (model.slot_seconds, waits) == (again.slot_seconds, waits_again)
    assert model.slot_seconds >= model.busy_seconds - 1e-6          # cost never below busy time
    assert sum(n for _, n in waits) == sum(n for _, n, _ in trace)  # everything ran by the end
    assert model.ready + model.starting <= max(knob.max_total_slots, knob.min_total_slots)
    assert all(w >= 0 for w, _ in waits)


CAN_COMPILE = shutil.which("cc") and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


@pytest.mark.skipif(not CAN_COMPILE, reason="no C compiler or Python headers here: the model runs interpreted")
def test_the_installed_model_is_compiled():
    # Replays and searches are ~4x faster compiled; setup.py compiles policies/model.py with mypyc.
    assert policies.model.__file__.endswith(".so"), "reinstall with `pip install -e .` to compile the model"


@pytest.mark.skipif(not policies.model.__file__.endswith(".so"), reason="the model is not compiled here")
def test_an_edited_model_runs_from_source_not_from_its_stale_binary(tmp_path):
    package = Path(policies.__file__).parent
    shutil.copytree(package, tmp_path / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    edited = tmp_path / "policies" / "model.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")   # newer than the binary beside it
    out = subprocess.run([sys.executable, "-c", "import policies.model as m; print(m.EDITED, m.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", str(edited)]
    assert "run `pip install -e .` again" in out.stderr
