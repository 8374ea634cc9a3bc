"""The advisor against hindsight, on every shipped trace (or the traces given), for SLOs of 300 s and 60 s.

Each trace is split as the advisor splits a pool's history: it chooses on the older part and everything
below is scored on the most recent part (the held-out window: a quarter of the trace, at most a week).
Per trace and SLO it prints, on that window:
- SDK defaults with max at peak, and static slots at peak (the baselines);
- the oracle: the cheapest fixed (legacy) setting of a broad grid keeping p95 wait within the SLO,
  chosen in hindsight on the held-out window itself;
- the busy slot-hours: what the work itself needs, a clairvoyant floor no setting beats;
- the advisor (`search`): its held-out slot-hours and p95, and the ratio to the oracle;
- the cheapest weekly schedule the advisor tried that keeps the SLO, against the oracle.
Targets: the advisor keeps the SLO at <= 1.10x the oracle's slot-hours wherever some grid setting keeps
it; on a trace with a daily rhythm, a weekly schedule >= 15% cheaper than the best fixed setting.

    python benchmarks/bench_policies.py [TRACE.csv|.swf ...]
"""
import itertools
import math
import sys
import time
from pathlib import Path

import pandas as pd

from policies.backtest import baselines, peak_demand
from policies.frontier import describe, evaluate
from policies.recommendation import Demand, holdout
from policies.registry import advise
from policies.settings import ElasticSettings
from policies.traces import read_csv, read_swf

TRACES = Path(__file__).with_name("traces")
SLOS = (300.0, 60.0)
STARTUP = 60.0


def oracle_grid(peak: int) -> list[ElasticSettings]:
    """A broad grid of fixed settings: max from half to twice the peak, every small idle reserve."""
    maxes = sorted({max(1, math.ceil(peak * s)) for s in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)})
    reserves = sorted({r for r in list(range(0, 17)) + [20, 24, 32, 48, 64] if r <= max(1, peak)})
    out = set()
    for top, reserve, idle, factor in itertools.product(maxes, reserves, (0, 60, 90, 120, 300, 600, 900, 1800, 3600),
                                                        (0.1, 0.2, 0.5, 1.0)):
        out.add(ElasticSettings(0, top, min(reserve, top), idle, factor, 90))
    for floor in sorted({int(peak * q) for q in (0.1, 0.25, 0.5)} - {0}):
        for idle in (0, 300, 900):
            out.add(ElasticSettings(floor, max(maxes[2], floor), 0, idle, 1.0, 90))
    return sorted(out, key=lambda s: (s.max_total_slots, s.min_idle_slots, s.min_idle_time_seconds, s.resize_factor,
                                      s.min_total_slots))


def busy_hours(trace, start: float, end: float) -> float:
    return sum(n * max(0.0, min(t + d, end) - max(t, start)) for t, n, d in trace.arrivals) / 3600


def bench(path: Path) -> tuple[list[dict], list[str]]:
    text = path.read_text()
    trace = read_swf(text) if path.suffix == ".swf" else read_csv(text)
    rows, notes = [], []
    full = Demand(trace, trace.arrivals[0][0], trace.arrivals[-1][0], STARTUP, SLOS[0])
    held = holdout(full)
    h_trace, start, end, _ = held.scoring_window()
    common = dict(start=start, end=end, epoch=held.time_zero, startup_delay=STARTUP, slo=SLOS[0])
    base = baselines(trace)
    base_points = {label: evaluate(h_trace, [s], **common)[0] for label, s in base.items()}
    began = time.perf_counter()
    grid = evaluate(h_trace, oracle_grid(peak_demand(trace)), **common)
    oracle_seconds = time.perf_counter() - began
    floor = busy_hours(h_trace, start, end)
    for slo in SLOS:
        began = time.perf_counter()
        rec = advise("search", Demand(trace, full.start, full.end, STARTUP, slo), base["sdk-defaults-max-at-peak"])
        advisor_seconds = time.perf_counter() - began
        keeping = [p for p in grid if p.wait_p95 <= slo]
        oracle = min(keeping, key=lambda p: (p.slot_hours, p.wait_p95)) if keeping else None
        got = rec.evidence["recommended"]
        schedules = [r["heldout"] for r in rec.evidence.get("frontier", ())
                     if r["kind"] == "scaling" and r["heldout"] and r["heldout"]["wait_p95_seconds"] <= slo]
        best_schedule = min((s["slot_hours"] for s in schedules), default=None)
        ratio = got["slot_hours"] / oracle.slot_hours if oracle else None
        kept = got["wait_p95_seconds"] <= slo
        rows.append({
            "trace": path.stem, "slo_s": int(slo), "held_out_h": round((end - start) / 3600),
            "sdk_max@peak": _pair(base_points["sdk-defaults-max-at-peak"]),
            "static@peak": _pair(base_points["static-at-peak"]),
            "oracle": _pair(oracle) if oracle else "none keeps it",
            "busy_floor_h": round(floor, 1),
            "advisor": f"{got['slot_hours']:.1f} h / {got['wait_p95_seconds']:.0f} s",
            "advisor_kind": "weekly" if not isinstance(rec.settings, ElasticSettings) else "fixed",
            "x_oracle": round(ratio, 3) if ratio else None,
            "target": ("met" if kept and ratio <= 1.10 else "MISSED") if oracle else "n/a (unachievable)",
            "weekly_vs_oracle": f"{best_schedule / oracle.slot_hours - 1:+.1%}" if best_schedule and oracle else "-",
            # what a schedule 15% cheaper than the oracle would cost, beside what the work itself needs
            "oracle-15%_h": round(0.85 * oracle.slot_hours, 1) if oracle else None,
        })
        if rec.evidence.get("weekly_windows") and oracle:
            notes.append(f"{path.stem} slo {slo:.0f} s: weekly windows {', '.join(rec.evidence['weekly_windows'])}; "
                         f"best weekly schedule kept the SLO at "
                         f"{'-' if best_schedule is None else f'{best_schedule:.1f} h'} vs the oracle's "
                         f"{oracle.slot_hours:.1f} h; 15% below it is {0.85 * oracle.slot_hours:.1f} h, against "
                         f"{floor:.1f} h of busy work and {base_points['sdk-defaults-max-at-peak'].slot_hours:.1f} h "
                         f"for purely reactive settings (p95 {base_points['sdk-defaults-max-at-peak'].wait_p95:.0f} s)")
        notes.append(f"{path.stem} slo {slo:.0f} s: advisor {rec.reason_code} ({advisor_seconds:.1f} s): "
                     f"{describe(rec.settings)}; oracle: {describe(oracle.settings) if oracle else '-'} "
                     f"(grid of {len(grid)} in {oracle_seconds:.1f} s)")
    return rows, notes


def _pair(point) -> str:
    return f"{point.slot_hours:.1f} h / {point.wait_p95:.0f} s"


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted(TRACES.glob("*.csv"))
    rows, notes = [], []
    for path in files:
        r, n = bench(path)
        rows += r
        notes += n
    print("held-out window: slot-hours / p95 wait")
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 40):
        print(pd.DataFrame(rows).to_string(index=False))
    print("\n".join(notes))
    verdicts = [r["target"] for r in rows]
    print(f"targets (SLO kept at <= 1.10x the oracle, held-out): {verdicts.count('met')} met, "
          f"{verdicts.count('MISSED')} missed, {len(verdicts) - verdicts.count('met') - verdicts.count('MISSED')} "
          f"where no grid setting keeps the SLO")


if __name__ == "__main__":
    main(sys.argv[1:])
