"""`pool-tracker backtest`: load a demand trace, replay it under baselines and candidate settings, print
the scores side by side, and optionally plot demand against supply.

A candidate is elastic knobs (`--settings max=20,factor=0.5`) or a scaling document in a JSON file
(`--settings schedule.json`: the API's `scaling` object, or a pool document carrying one), replayed with
its weekly periods."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from policies.backtest import Replay, baselines, replay, score
from policies.frontier import describe
from policies.model import Sizing
from policies.recommendation import HOLDOUT_SHARE, Demand, holdout
from policies.scaling import Scaling
from policies.settings import MIN_RESIZE_PERIOD, SDK_DEFAULTS, ElasticSettings, InvalidSettings
from policies.traces import (Trace, TraceError, history_to_trace, read_csv, read_swf, tasks_cover_history,
                             tasks_to_trace)
from tracker.client import Target
from tracker.frontier_view import frontier_table, plot_frontier
from tracker.sql import as_frame, run_query

HISTORY_ROWS = 10_000_000    # a pool's whole history; a daemon caps it at its sql.max_rows

ALIASES = {"min": "min_total_slots", "max": "max_total_slots", "min_idle": "min_idle_slots",
           "idle_time": "min_idle_time_seconds", "factor": "resize_factor", "period": "resize_period"}
KNOBS = tuple(SDK_DEFAULTS)   # our names of the six elastic knobs


def read_scaling(path: str) -> Scaling:
    """A JSON file holding a `scaling` object, or a pool document with one."""
    try:
        body = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InvalidSettings(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidSettings(f"{path} is not JSON: {exc}") from None
    if isinstance(body, dict) and isinstance(body.get("scaling"), dict):
        body = body["scaling"]
    try:
        return Scaling.from_api(body)
    except InvalidSettings as exc:
        raise InvalidSettings(f"{path}: {exc}") from None


def parse_settings(text: str) -> Sizing:
    """`max_total_slots=20,resize_factor=0.5` (or short names: min, max, min_idle, idle_time, factor,
    period) over the SDK's defaults; or a path ending in .json to a scaling document."""
    if text.strip().lower().endswith(".json"):
        return read_scaling(text.strip())
    values = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not sep or key not in KNOBS:
            raise InvalidSettings(f"cannot read {part!r} in --settings; use NAME=VALUE with NAME one of "
                                  f"{', '.join(KNOBS)} (or {', '.join(ALIASES)})")
        try:
            values[key] = float(raw) if key == "resize_factor" else int(raw)
        except ValueError:
            raise InvalidSettings(f"{key} needs a number, got {raw!r}") from None
    return ElasticSettings(**values).validated()


ARRIVALS = ("auto", "tasks", "counts")   # where a pool's arrivals come from (see `pool_arrivals`)


def load_trace(path: str | None, pool: str | None, target: Target | None, arrivals: str = "auto"):
    """-> (trace, start, end, the pool's current settings or None, source description)."""
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise TraceError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise TraceError(f"{path} is not a text file (byte {exc.start} is not UTF-8): give a CSV "
                             "(submit_time,instances,duration_seconds) or an SWF trace") from None
        trace = read_swf(text) if path.lower().endswith(".swf") else read_csv(text)
        return trace, None, None, None, path
    result = run_query(f"SELECT * FROM pool_history WHERE pool_uuid = '{pool.replace(chr(39), '')}' ORDER BY \"at\"",
                       target, limit=HISTORY_ROWS)
    if result.truncated:
        raise TraceError(f"pool {pool} has more than {result.limit} history rows, the most the daemon serves "
                         "(sql.max_rows): raise it, or stop the daemon and back-test from the file with --url ''")
    frame = as_frame(result)
    if frame.empty:
        raise TraceError(f"no history for pool {pool} in {target.url or target.db}; check the uuid with "
                         "`pool-tracker sql \"SELECT pool_uuid, name FROM pool_current\"`")
    frame["at"] = pd.to_datetime(frame["at"])
    trace, start, end, how = pool_arrivals(frame, pool, target, arrivals)
    last = frame.iloc[-1]
    current = None
    if not pd.isna(last["max_total_slots"]):
        current = ElasticSettings(**{k: (float if k == "resize_factor" else int)(last[k]) for k in KNOBS})
        # Qarnot refuses periods under 90 s; older histories (and older emulators) may hold some
        current = current.with_(resize_period=max(current.resize_period, MIN_RESIZE_PERIOD))
    return trace, start, end, current, f"pool {pool} ({how})"


def pool_arrivals(frame: pd.DataFrame, pool: str, target: Target, arrivals: str) -> tuple[Trace, float, float, str]:
    """The pool's real recorded tasks when they cover its history (`auto`) or when asked (`tasks`); else the
    arrivals and run times inferred from its count changes, as precise as the poll interval. -> (trace,
    start, end, which source, said in words)."""
    inferred, start, end = history_to_trace(frame)
    if arrivals == "counts":
        return inferred, start, end, "arrivals inferred from count changes, as asked"
    quoted = pool.replace(chr(39), "")
    rows = run_query("SELECT epoch(created), instances, epoch(started), epoch(ended), run_seconds FROM tasks "
                     f"WHERE pool_uuid = '{quoted}' ORDER BY created", target, limit=HISTORY_ROWS).rows
    first_seen = run_query(f"SELECT epoch(min(recorded_at)) FROM events WHERE pool_uuid = '{quoted}' "
                           "AND type IN ('task_submitted', 'task_started', 'task_finished')", target, limit=1).rows
    busy = frame.loc[frame["queued_or_running"] > 0, "at"]
    first_demand = None if busy.empty else busy.iloc[0].timestamp()
    covered = bool(rows) and tasks_cover_history(first_demand, first_seen[0][0] if first_seen else None)
    if arrivals == "tasks" and not rows:
        raise TraceError(f"pool {pool} has no recorded tasks: enable [tasks] in the daemon's config and let it "
                         "collect, or use --arrivals counts")
    if arrivals == "auto" and not covered:
        why = "no recorded tasks" if not rows else "tasks were recorded only after its counts showed work"
        return inferred, start, end, f"arrivals inferred from count changes, as precise as the poll interval: {why}"
    trace = tasks_to_trace(rows, end)
    start = min([start, *(t for t, _, _ in trace.arrivals[:1])])
    return trace, start, end, f"{len(rows)} recorded tasks: real arrival, instances and run time of each"


class Progress:
    """One progress bar over every back-test of a command: its own runs and a policy's internal search."""

    def __init__(self, enabled: bool, total: int = 0) -> None:
        self.bar = tqdm(total=total, disable=not enabled, desc="back-testing", unit="run")
        self.offset = 0          # runs finished in phases that are over
        self.remaining = total   # runs planned after the current phase

    def phase(self, done: int, total: int) -> None:
        """Progress of a phase run elsewhere (a policy's search): `done` of `total` runs."""
        self.bar.total = self.offset + max(total, done) + self.remaining
        self.bar.n = self.offset + done
        self.bar.refresh()

    def end_phase(self) -> None:
        """The phase ran fewer runs than it planned at first: the total drops to what it really took."""
        self.offset = self.bar.n
        self.bar.total = self.offset + self.remaining
        self.bar.refresh()

    def step(self) -> None:
        self.remaining = max(0, self.remaining - 1)
        self.bar.update(1)
        self.offset = self.bar.n

    def close(self) -> None:
        self.bar.close()


def compare(trace: Trace, candidates: dict[str, Sizing], *, start=None, end=None,
            startup_delay: float = 60.0, slo: float = 300.0, cores_per_slot: int | None = None,
            progress: Progress | None = None, timelines: bool = False,
            epoch: float | None = None) -> tuple[pd.DataFrame, dict[str, Replay]]:
    runs, rows = {}, []
    for label, settings in candidates.items():
        runs[label] = run = replay(trace, settings, startup_delay=startup_delay, start=start, end=end,
                                   timeline=timelines, epoch=epoch)
        rows.append({"candidate": label, **score(run, slo_seconds=slo, cores_per_slot=cores_per_slot).as_dict()})
        if progress is not None:
            progress.step()
    table = pd.DataFrame(rows).set_index("candidate")
    return (table if cores_per_slot else table.drop(columns=["core_hours"])), runs


MAX_POINTS = 1500           # per line: beyond it the timeline is averaged in bins (band: the bin's maximum)


def binned(timeline: np.ndarray, start: float, end: float, bins: int):
    """A step function (rows: time, value...) as per-bin time-weighted means and maxima over [start, end]."""
    t = timeline[:, 0]
    edges = np.linspace(start, end, bins + 1)
    widths = np.diff(t, append=end).clip(min=0)
    out_mean, out_max = [], []
    for col in range(1, timeline.shape[1]):
        v = timeline[:, col]
        cumulative = np.concatenate([[0.0], np.cumsum(v * widths)])
        i = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 1)
        integral = cumulative[i] + v[i] * (edges - t[i]).clip(min=0)
        out_mean.append(np.diff(integral) / np.diff(edges))
        peak = np.maximum.reduceat(v, i[:-1])
        spill = (i[1:] > i[:-1]) & (t[i[1:]] < edges[1:])      # a step starting inside the bin, lasting past it
        out_max.append(np.where(spill, np.maximum(peak, v[i[1:]]), peak))
    return edges[:-1] + np.diff(edges) / 2, out_mean, out_max


def describe_sizing(settings: Sizing) -> str:
    if isinstance(settings, ElasticSettings):
        return (f"min {settings.min_total_slots}, max {settings.max_total_slots}, min_idle {settings.min_idle_slots}, "
                f"idle {settings.min_idle_time_seconds} s, factor {settings.resize_factor:g}, "
                f"period {settings.resize_period} s")
    return f"scaling document: {', '.join(p.name for p in settings.policies)}"


def build_figure(runs: dict[str, Replay], table: pd.DataFrame | None = None, title: str = "", slo: float = 300.0):
    """Demand on top, then each candidate's supply against it: unmet demand shaded red, idle supply grey,
    maxTotalSlots dashed; settings and scores in each title. Long windows are averaged per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    first = next(iter(runs.values()))
    start, end = first.start, first.end
    longest = max(len(r.timeline) for r in runs.values())
    bins = MAX_POINTS if longest > MAX_POINTS else None
    wall_clock = start > 978_307_200          # epoch seconds (a tracked pool's history), not relative time
    def axis(times):
        return mdates.date2num(times.astype("datetime64[s]")) if wall_clock else (times - start) / 3600

    def series(run):
        if bins:
            t, (demand, supply), (demand_max, _) = binned(run.timeline, start, end, bins)
            return axis(np.asarray(t)), demand, supply, demand_max, "mid"
        tl = np.vstack([run.timeline, run.timeline[-1:]])
        tl[-1, 0] = end
        return axis(tl[:, 0]), tl[:, 1], tl[:, 2], None, "post"

    fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(13, 2.3 * (len(runs) + 1)), sharex=True, squeeze=False)
    x, demand, _, demand_max, where = series(first)
    top = axes[0, 0]
    if demand_max is not None:
        top.fill_between(x, demand, demand_max, step=where, color="tab:orange", alpha=0.25, lw=0, label="bin maximum")
    top.step(x, demand, where=where, color="tab:orange", lw=1.2, label="demand (busy + queued instances)")
    top.set_title("demand: task instances busy or queued" + (f" (mean per {(end - start) / bins / 60:.0f} min bin, "
                  "band up to the bin's maximum)" if bins else ""), fontsize=10, loc="left")
    top.legend(loc="upper right", fontsize=8)
    for ax, (label, run) in zip(axes[1:, 0], runs.items()):
        x, demand, supply, _, where = series(run)
        ax.fill_between(x, supply, demand, where=demand > supply, step=where, color="tab:red", alpha=0.35, lw=0,
                        label="unmet demand")
        ax.fill_between(x, demand, supply, where=supply > demand, step=where, color="0.6", alpha=0.35, lw=0,
                        label="idle supply")
        ax.step(x, supply, where=where, color="tab:blue", lw=1.2, label="supply (ready slots)")
        ax.step(x, demand, where=where, color="tab:orange", lw=0.8, alpha=0.8, label="demand")
        if isinstance(run.settings, ElasticSettings):
            ax.axhline(run.settings.max_total_slots, color="0.3", ls="--", lw=0.8, label="maxTotalSlots")
        scores = ""
        if table is not None and label in table.index:
            row = table.loc[label]
            scores = (f": {row['slot_hours']:.1f} slot-h ({row['idle_slot_hours']:.1f} idle), p95 wait "
                      f"{row['wait_p95']:.0f} s, {row['share_over_slo'] * 100:.1f}% over {slo:g} s")
        ax.set_title(f"{label}{scores}\n{describe_sizing(run.settings)}", fontsize=9, loc="left")
        ax.set_ylabel("instances")
    axes[1, 0].legend(loc="upper right", fontsize=8, ncol=5)
    if wall_clock:
        axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(axes[-1, 0].xaxis.get_major_locator()))
        axes[-1, 0].set_xlabel("time (UTC)")
    else:
        axes[-1, 0].set_xlabel("hours since the start of the trace")
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return fig


def plot(runs: dict[str, Replay], path: str, table: pd.DataFrame | None = None, title: str = "",
         slo: float = 300.0) -> None:
    import matplotlib.pyplot as plt

    fig = build_figure(runs, table, title, slo)
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise TraceError(f"cannot write the plot to {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)


def policy_candidates(names: list[str], trace: Trace, start, end, current, startup_delay, slo, *,
                      budget: float | None = None, holdout_share: float = HOLDOUT_SHARE, progress: Progress | None = None):
    """Run the named policies (or "all") out of sample on the trace; -> ({label: settings}, [reason lines],
    {label: Recommendation}, the held-out Demand they were scored on)."""
    from policies.registry import POLICIES, advise

    chosen = list(POLICIES) if "all" in names else names
    unknown = [n for n in chosen if n not in POLICIES]
    if unknown:
        raise InvalidSettings(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)} or all")
    demand = holdout(full_demand(trace, start, end, startup_delay, slo, budget), holdout_share)
    current = current or baselines(trace)["sdk-defaults-max-at-peak"]   # what a user would start from
    settings, reasons, recs = {}, [], {}
    for name in chosen:
        rec = advise(name, demand, current, share=holdout_share,
                     progress=None if progress is None else progress.phase)
        if progress is not None:
            progress.end_phase()
        reasons.append(f"policy:{name}: {rec.reason_code}: {rec.reason} (confidence {rec.confidence:.2f})")
        if rec.settings is not None:
            settings[f"policy:{name}"] = rec.settings
            recs[f"policy:{name}"] = rec
    return settings, reasons, recs, demand


def full_demand(trace: Trace, start, end, startup_delay, slo, budget=None) -> Demand:
    first = trace.arrivals[0][0]
    return Demand(trace, first if start is None else start,
                  max(t for t, _, _ in trace.arrivals) if end is None else end, startup_delay, slo, budget)


def run_backtest(*, trace_path, pool, target=None, settings_texts, policies, startup_delay, slo, cores_per_slot, fmt,
                 plot_path, budget=None, holdout_share=HOLDOUT_SHARE, frontier_plot=None, progress=None,
                 price=None, carbon=None, arrivals="auto") -> str:
    trace, start, end, current, source = load_trace(trace_path, pool, target, arrivals)
    if not trace.arrivals:
        raise TraceError(f"{source} has no task arrivals to replay")
    candidates: dict[str, Sizing] = dict(baselines(trace, current))
    candidates.update({text: parse_settings(text) for text in settings_texts})
    bar = Progress(bool(policies) or len(candidates) > 4 if progress is None else progress, 2 * len(candidates))
    try:
        proposed, reasons, recs, demand = policy_candidates(
            list(policies), trace, start, end, current, startup_delay, slo, budget=budget,
            holdout_share=holdout_share, progress=bar) if policies else ({}, [], {}, None)
        bar.remaining += 2 * len(proposed)
        bar.end_phase()
        candidates.update(proposed)
        table, runs = compare(trace, candidates, start=start, end=end, startup_delay=startup_delay, slo=slo,
                              cores_per_slot=cores_per_slot, progress=bar, timelines=bool(plot_path))
        held = demand if demand is not None else holdout(full_demand(trace, start, end, startup_delay, slo, budget),
                                                         holdout_share)
        h_trace, h_start, h_end, kind = held.scoring_window()
        held_table, _ = compare(h_trace, candidates, start=h_start, end=h_end, startup_delay=startup_delay, slo=slo,
                                cores_per_slot=cores_per_slot, progress=bar, epoch=held.time_zero)
    finally:
        bar.close()
    if pool:
        observed = unit_figures(pool, target)
        price, carbon = (price if price is not None else observed[0]), (carbon if carbon is not None else observed[1])
    for scores in (table, held_table):    # slot-hours in euros and grams, at the price and intensity given or seen
        if price is not None:
            scores["euros"] = scores["slot_hours"] * price
        if carbon is not None:
            scores["gco2eq"] = scores["slot_hours"] * carbon
    if plot_path:
        hours = (next(iter(runs.values())).end - next(iter(runs.values())).start) / 3600
        plot(runs, plot_path, table, f"{source}: demand and supply over {hours:.1f} h", slo)
    with_frontier = [(label, rec.evidence) for label, rec in recs.items() if rec.evidence.get("frontier")]
    if frontier_plot:
        plot_frontier(with_frontier or [(label, rec.evidence) for label, rec in recs.items()], frontier_plot)
    header = (f"{source}: {len(trace.arrivals)} tasks, {trace.instances} instances"
              + (f", {len(trace.skipped)} lines skipped (first: {trace.skipped[0]})" if trace.skipped else ""))
    hours = (h_end - h_start) / 3600
    chose = (f"policies chose on {_when(held.start, held)} .. {_when(held.end, held)} "
             f"({(held.end - held.start) / 3600:.0f} h) and are" if policies else "candidates are also")
    window = (f"window: {chose} scored on the {kind} {_when(h_start, held)} .. "
              f"{_when(h_end, held)} ({hours:.0f} h, {h_trace.instances} instances); SLO p95 wait <= {slo:.0f} s"
              + ("" if budget is None else f", budget {budget:.0f} slot-hours a week"))
    described = {label: describe(s) for label, s in candidates.items()}
    if fmt == "json":
        return json.dumps({"source": source, "skipped": list(trace.skipped), "policies": reasons, "window": window,
                           "settings": {label: s.to_api() for label, s in candidates.items()},
                           "described": described,
                           "results": json.loads(table.reset_index().to_json(orient="records")),
                           "heldout": json.loads(held_table.reset_index().to_json(orient="records")),
                           "evidence": {label: rec.evidence for label, rec in recs.items()}}, indent=1, default=float)
    lines = [header, *reasons, window]
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.float_format", "{:.2f}".format):
        lines += ["", "whole trace:", table.T.to_string(), "", f"{kind} window:", held_table.T.to_string()]
    lines += ["", "settings scored:"] + [f"  {label}: {text}" for label, text in described.items()]
    for label, ev in with_frontier:
        lines += ["", f"{label}: cost/wait frontier (* = chosen, off the frontier)", frontier_table(ev)]
    return "\n".join(lines)


def unit_figures(pool: str, target: Target) -> tuple[float | None, float | None]:
    """(euros, gCO2eq) per slot-hour this account paid and emitted for the pool's scheduling type."""
    rows = run_query("SELECT f.euros_per_slot_hour, f.gco2eq_per_slot_hour FROM figures_per_slot_hour f JOIN pool_meta m "
                     "ON coalesce(m.scheduling_type, 'unknown') = f.scheduling_type "
                     f"WHERE m.pool_uuid = '{pool.replace(chr(39), '')}'", target, limit=1).rows
    return tuple(rows[0]) if rows else (None, None)


def _when(t: float, demand: Demand) -> str:
    """A model time as a date (UTC) when the trace has dates, else as hours from its start."""
    from datetime import datetime, timezone

    if demand.time_zero == 0.0:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M")
    return f"{t / 3600:.0f} h"
