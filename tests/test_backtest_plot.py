"""Back-test plots an operator can read for any window: demand in its own panel, each candidate's supply
against it with its settings and scores in the title, long windows averaged into a bounded number of bins."""
import numpy as np
import pytest

from policies.traces import read_csv
from tracker.backtest_cmd import MAX_POINTS, binned, build_figure, compare, parse_settings, plot


def test_binning_keeps_each_bins_average_and_peak():
    timeline = np.array([[0.0, 0.0, 2.0], [10.0, 5.0, 2.0], [25.0, 1.0, 4.0]])
    centres, (demand, supply), (demand_max, supply_max) = binned(timeline, 0.0, 40.0, 4)
    assert list(centres) == [5.0, 15.0, 25.0, 35.0]
    assert list(demand) == [0.0, 5.0, 3.0, 1.0] and list(demand_max) == [0.0, 5.0, 5.0, 1.0]
    assert list(supply) == [2.0, 2.0, 3.0, 4.0] and list(supply_max) == [2.0, 2.0, 4.0, 4.0]


@pytest.fixture(scope="module")
def month():
    """30 days: a burst of 20 instances every 6 hours on a trickle of single tasks."""
    lines = ["submit_time,instances,duration_seconds"]
    for hour in range(30 * 24):
        lines.append(f"{hour * 3600 + 60},1,900")
        if hour % 6 == 0:
            lines.append(f"{hour * 3600 + 120},20,1800")
    trace = read_csv("\n".join(lines))
    candidates = {"tight": parse_settings("max=10,min_idle=0,idle_time=60"),
                  "roomy": parse_settings("max=30,min_idle=2,idle_time=600")}
    table, runs = compare(trace, candidates, timelines=True)
    return table, runs


def test_a_month_is_readable_demand_apart_and_settings_and_scores_in_titles(month):
    table, runs = month
    fig = build_figure(runs, table, "a month of bursts")
    axes = fig.axes
    assert len(axes) == 3                                          # demand, then one panel per candidate
    assert axes[0].get_title(loc="left").startswith("demand: task instances busy or queued (mean per")
    tight = axes[1].get_title(loc="left")
    assert tight.startswith("tight: ") and "slot-h" in tight and "p95 wait" in tight and "max 10" in tight
    assert f"{table.loc['tight', 'slot_hours']:.1f} slot-h" in tight
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == 10 for line in axes[1].get_lines())
    for ax in axes:                                                # bounded, however long the window
        assert all(len(line.get_xdata()) <= MAX_POINTS + 2 for line in ax.get_lines())
    assert fig._suptitle.get_text() == "a month of bursts"


def test_short_windows_are_drawn_step_by_step_and_the_png_is_written(month, tmp_path):
    table, runs = month
    day = {label: type(run)(**{**run.__dict__, "timeline": run.timeline[run.timeline[:, 0] < 86400],
                               "end": 86400.0}) for label, run in runs.items()}
    fig = build_figure(day, table)
    assert "mean per" not in fig.axes[0].get_title(loc="left")
    plot(day, str(tmp_path / "day.png"), table)
    assert (tmp_path / "day.png").read_bytes()[:4] == b"\x89PNG"
