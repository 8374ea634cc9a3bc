"""Every policy on every shipped trace, beside the baselines, and the two checks the advisor's default
(search) must pass: no baseline beats it on both cost and p95 wait, and it cuts slot-hours by at least
30% against static slots at peak.

    python benchmarks/bench_policies.py
"""
import time
from pathlib import Path

import pandas as pd

from policies.backtest import baselines, backtest
from policies.registry import DEFAULT_POLICY
from policies.traces import read_csv
from tracker.backtest_cmd import policy_candidates

TRACES = Path(__file__).with_name("traces")


def main():
    rows, verdicts = [], []
    for path in sorted(TRACES.glob("*.csv")):
        trace = read_csv(path.read_text())
        start = time.perf_counter()
        proposed, _ = policy_candidates(["all"], trace, None, None, None, 60.0, 300.0)
        elapsed = time.perf_counter() - start
        scores = {label: backtest(trace, s) for label, s in {**baselines(trace), **proposed}.items()}
        for label, s in scores.items():
            rows.append({"trace": path.stem, "candidate": label, "slot_hours": round(s.slot_hours, 1),
                         "wait_p95_s": round(s.wait_p95, 1), "over_slo_%": round(100 * s.share_over_slo, 2),
                         "under_acc_%": round(s.under_accuracy, 2), "over_acc_%": round(s.over_accuracy, 1)})
        default = scores[f"policy:{DEFAULT_POLICY}"]
        beaten = [b for b in baselines(trace) if scores[b].slot_hours < default.slot_hours
                  and scores[b].wait_p95 < default.wait_p95]
        cut = 1 - default.slot_hours / scores["static-at-peak"].slot_hours
        verdicts.append(f"{path.stem}: default ({DEFAULT_POLICY}) beaten on both by: {beaten or 'none'}; "
                        f"slot-hours cut vs static at peak: {cut:.0%}; all policies ran in {elapsed:.1f} s")
    print(pd.DataFrame(rows).to_string(index=False))
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
