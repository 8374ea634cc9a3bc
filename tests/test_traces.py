"""Trace readers on small files, malformed lines included."""
import pytest
from hypothesis import given, strategies as st

from policies.traces import TraceError, read_csv, read_swf


def test_csv_reads_arrivals_sorted_and_reports_bad_lines_by_number():
    trace = read_csv("submit_time,instances,duration_seconds\n30,2,600\n0,1,60\nx,1,1\n10,-1,5\n")
    assert trace.arrivals == ((0.0, 1, 60.0), (30.0, 2, 600.0))
    assert [s.split(":")[0] for s in trace.skipped] == ["line 4", "line 5"] and trace.instances == 3


def test_csv_without_the_columns_names_them():
    with pytest.raises(TraceError, match="lacks instances, duration_seconds"):
        read_csv("submit_time,count\n1,2\n")


SWF = """; Version: 2.2
; Computer: example
1 0 5 3600 16 -1 -1 16 3600 -1 1 1 1 1 1 -1 -1 -1
2 120 0 -1 8 -1 -1 8 600 -1 0 1 1 1 1 -1 -1 -1
3 60 2 300 4 -1 -1 4 300 -1 1 1 1 1 1 -1 -1 -1
4 banana 2 300 4
5 7 1
"""


def test_swf_takes_submit_run_and_processors_and_skips_the_rest_by_line():
    trace = read_swf(SWF)
    assert trace.arrivals == ((0.0, 16, 3600.0), (60.0, 4, 300.0))
    assert [s.split(":")[0] for s in trace.skipped] == ["line 4", "line 6", "line 7"]


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 500), st.integers(0, 10**5)), max_size=30))
def test_csv_round_trips_any_valid_rows(rows):
    text = "submit_time,instances,duration_seconds\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    trace = read_csv(text)
    assert trace.arrivals == tuple(sorted((float(a), b, float(c)) for a, b, c in rows)) and not trace.skipped


def test_history_becomes_arrivals_with_estimated_durations():
    import pandas as pd
    from policies.traces import history_to_trace

    frame = pd.DataFrame({"at": pd.to_datetime([0, 30, 60, 90, 120, 150], unit="s"),
                          "queued_or_running": [0, 3, 3, 1, 1, 0], "running_slots": [0, 0, 2, 2, 1, 1]})
    trace, start, end = history_to_trace(frame)
    # three arrive at 30; two start at 60 (two slots); two finish at 90 -> 30 s each; the third
    # starts at 90 and finishes at 150 -> 60 s
    assert (start, end) == (0.0, 150.0)
    assert trace.arrivals == ((30.0, 1, 60.0), (30.0, 2, 30.0))
