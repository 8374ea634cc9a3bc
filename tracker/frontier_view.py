"""How a pool's cost/wait frontier is shown: a table, and a PNG with the current and recommended points.

Shared by `pool-tracker backtest` and `pool-tracker recommend`; the frontier itself is computed by the
pure `policies.search` (its `evidence["frontier"]`)."""
from __future__ import annotations

import pandas as pd


def frontier_table(evidence: dict) -> str:
    """The frontier as the search scored it: on the older history and on the held-out window."""
    rows = evidence.get("frontier") or []
    if not rows:
        return "(no frontier: this policy does not search)"
    table = pd.DataFrame([{
        "kind": r["kind"] + ("*" if r.get("off_frontier") else ""),
        "slot_h older": r["train"]["slot_hours"], "p95_s older": r["train"]["wait_p95_seconds"],
        "slot_h held-out": (r["heldout"] or {}).get("slot_hours"),
        "p95_s held-out": (r["heldout"] or {}).get("wait_p95_seconds"),
        "settings": r["describe"]} for r in rows])
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 200):
        return table.to_string(index=False)


def plot_frontier(panels: list[tuple[str, dict]], path: str) -> None:
    """One panel per (title, evidence): the frontier on the held-out window (slot-hours vs p95 wait), the
    SLO, and the current and recommended points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(title, ev) for title, ev in panels if ev.get("frontier")] or panels
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 4.5 * len(panels)), squeeze=False)
    for ax, (title, ev) in zip(axes[:, 0], panels):
        scored = [r for r in ev.get("frontier") or () if r["heldout"]]
        fixed = sorted((r["heldout"]["slot_hours"], r["heldout"]["wait_p95_seconds"])
                       for r in ev.get("fixed_frontier") or () if r["heldout"])
        if fixed:
            ax.plot([x for x, _ in fixed], [y for _, y in fixed], color="lightgrey", marker=".", zorder=1,
                    label="plain settings only (no weekly schedule)")
        for kind, colour in (("elastic", "tab:blue"), ("scaling", "tab:green")):
            mine = [r for r in scored if r["kind"] == kind]
            if not mine:
                continue
            ax.scatter([r["heldout"]["slot_hours"] for r in mine], [r["heldout"]["wait_p95_seconds"] for r in mine],
                       s=18, color=colour, label=f"frontier: {'weekly schedule' if kind == 'scaling' else 'settings'}")
        if "current" in ev:
            ax.scatter([ev["current"]["slot_hours"]], [ev["current"]["wait_p95_seconds"]], marker="s", s=80,
                       color="tab:red", label="current", zorder=3)
        if "recommended" in ev:
            ax.scatter([ev["recommended"]["slot_hours"]], [ev["recommended"]["wait_p95_seconds"]], marker="*",
                       s=200, color="gold", edgecolor="black", label="recommended", zorder=4)
        if "slo_seconds" in ev:
            ax.axhline(ev["slo_seconds"], color="grey", linestyle="--", label=f"SLO p95 {ev['slo_seconds']:.0f} s")
        window = ev.get("window", {})
        ax.set_title(f"{title} ({window.get('kind', '')} window, {window.get('hours', '?')} h)", fontsize=10,
                     loc="left")
        ax.set_xlabel("billed slot-hours")
        ax.set_ylabel("p95 wait (s)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
