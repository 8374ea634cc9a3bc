"""Write the shipped demand traces (seeded, 7 days each) to benchmarks/traces/*.csv.

    python benchmarks/make_traces.py
"""
from pathlib import Path

from policies.workload import Workload

DAYS = 7
SHAPES = {  # file name -> (pattern, seed, scale)
    "steady": ("steady", 1, 1.0),
    "diurnal": ("diurnal", 2, 1.0),
    "bursty": ("bursty", 3, 1.0),
    "sparse": ("idle", 4, 3.0),   # long idle gaps between small jobs
}


def main():
    out = Path(__file__).with_name("traces")
    out.mkdir(exist_ok=True)
    for name, (pattern, seed, scale) in SHAPES.items():
        rows = Workload(pattern, seed, scale).arrivals(0, DAYS * 86400)
        lines = ["submit_time,instances,duration_seconds"] + [f"{t:.1f},{n},{d:.1f}" for t, n, d in rows]
        (out / f"{name}.csv").write_text("\n".join(lines) + "\n")
        print(f"{name}: {len(rows)} tasks, {sum(n for _, n, _ in rows)} instances")


if __name__ == "__main__":
    main()
