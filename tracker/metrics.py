"""Prometheus metrics, designed the kube-state-metrics way. The only prometheus_client user.

Per-pool series come from the current projection, read fresh at each scrape by a custom collector, so a
deleted pool simply disappears. The tracker's own health is kept in ordinary counters and histograms.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, Info, PlatformCollector,
                               ProcessCollector, disable_created_metrics, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from policies.scaling import FixedPolicy
from policies.settings import API_FIELDS, ElasticSettings
from tracker import __version__
from tracker.events import PoolView
from tracker.snapshot import STATES

disable_created_metrics()    # no `_created` series beside each counter and histogram: noise on dashboards

SETTINGS = tuple(API_FIELDS)  # min_total_slots, max_total_slots, ...
SCALING_KNOBS = ("min_total_slots", "max_total_slots", "min_idle_slots", "min_idle_time_seconds", "scaling_factor")
Recommendations = Mapping[str, Mapping[str, ElasticSettings]]  # pool uuid -> policy -> settings
POLL_OUTCOMES = ("ok", "unauthorized", "unavailable", "malformed", "store_failed")   # created at 0 at start
COMMIT_OUTCOMES = ("applied", "refused", "failed")
RETRY_REASONS = ("unavailable", "malformed")


# Per-pool families, in exposition order: name -> (type, help, extra label names). kube-state-metrics
# conventions: `status_` for what the API observes, `spec_` for what is configured, units in the names.
# Renamed from the first release (old -> new, same meaning): qarnot_pool_state -> qarnot_pool_status_state,
# qarnot_pool_state_transition_timestamp_seconds -> qarnot_pool_status_state_transition_timestamp_seconds,
# qarnot_pool_running_instances -> qarnot_pool_status_running_instances, qarnot_pool_running_cores ->
# qarnot_pool_status_running_cores, qarnot_pool_queued_or_running_task_instances ->
# qarnot_pool_status_queued_or_running_task_instances, qarnot_pool_errors -> qarnot_pool_status_error_messages,
# qarnot_pool_execution_seconds_total -> qarnot_pool_status_execution_seconds_total,
# qarnot_pool_{spec,recommended}_resize_period -> qarnot_pool_{spec,recommended}_resize_period_seconds.
UNITS = {"resize_period": "resize_period_seconds"}        # our settings' names -> metric name suffixes
FAMILIES = {
    "qarnot_pool_info": ("gauge", "Static properties of a pool (value 1); tags comma-separated.",
                         ("name", "profile", "tags")),
    "qarnot_pool_tag": ("gauge", "One series per tag of the pool (value 1).", ("tag",)),
    "qarnot_pool_labels": ("gauge", "The pool's Qarnot labels allowed by metrics.pool_labels, as label_<key> "
                           "(value 1).", None),                     # None: label names vary with the pool
    "qarnot_pool_status_state": ("gauge", "1 for the pool's current state (API field state), 0 for the others.",
                                 ("state",)),
    "qarnot_pool_status_state_transition_timestamp_seconds": (
        "gauge", "When the pool entered its state, Unix time (API field stateTransitionTime).", ()),
    "qarnot_pool_status_running_instances": ("gauge", "Running instances, i.e. nodes (runningInstanceCount).", ()),
    "qarnot_pool_status_running_slots": ("gauge", "Running slots: instances x slots per node.", ()),
    "qarnot_pool_spec_slots_per_node": ("gauge", "Slots per node (multiSlotsSettings.slotsPerNode).", ()),
    "qarnot_pool_status_running_cores": ("gauge", "Running cores (runningCoreCount).", ()),
    "qarnot_pool_status_queued_or_running_task_instances": (
        "gauge", "Task instances queued or running on the pool (queuedOrRunningTaskInstancesCount).", ()),
    "qarnot_pool_status_error_messages": ("gauge", "Error messages the API reports for the pool (errors).", ()),
    "qarnot_pool_status_execution_seconds_total": (
        "counter", "Qarnot's own execution time of the pool's instances (executionTime; its unit is "
        "unverified: core-hours come from the running cores).", ()),
    "qarnot_pool_spec_elastic": ("gauge", "1 if the pool is elastic (elasticProperty.isElastic).", ()),
    **{f"qarnot_pool_spec_{UNITS.get(n, n)}": ("gauge", f"Configured {api} (elasticProperty.{api}).", ())
       for n, api in API_FIELDS.items()},
    **{f"qarnot_pool_recommended_{UNITS.get(n, n)}": ("gauge", f"Recommended {api}, per policy.", ("policy",))
       for n, api in API_FIELDS.items()},
    "qarnot_pool_status_held_at_quota": ("gauge", "1 while the API says the pool cannot grow because the "
                                         "account's computing quota is reached (errors), else 0.", ()),
    "qarnot_pool_credits_euros_total": ("counter", "Credits (euros) the pool has consumed, at the last checkpoint.", ()),
    "qarnot_pool_energy_wh_total": ("counter", "Energy the pool has consumed (Wh), from its carbon facts.", ()),
    "qarnot_pool_reused_energy_wh_total": ("counter", "Of which reused as heat (Wh).", ()),
    "qarnot_pool_carbon_grams_total": ("counter", "The pool's carbon footprint (gCO2eq).", ()),
    "qarnot_pool_equivalent_datacenter_carbon_grams_total": ("counter", "The same work's footprint in the "
                                                             "comparison data centre (gCO2eq).", ()),
    **{f"qarnot_pool_{k}_ratio": ("gauge", f"{k.upper()} of the pool's carbon facts.", ()) for k in ("pue", "ere", "erf")},
    "qarnot_pool_wue_liters_per_kwh": ("gauge", "WUE of the pool's carbon facts.", ()),
    "qarnot_pool_status_scaling_policy_active": ("gauge", "1 for the scaling policy the API reports active, 0 for the "
                                          "pool's other policies.", ("scaling_policy", "type")),
    **{f"qarnot_pool_spec_scaling_{n}": ("gauge", f"Configured {n} of each scaling policy (Fixed: min = max = "
                                         "slotsCount, the rest absent).", ("scaling_policy",)) for n in SCALING_KNOBS},
}
HEADERS = {name: f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode() for name, (kind, text, _) in FAMILIES.items()}


def held_at_quota(errors) -> bool:
    """The API's error for a pool the account quota stops (its wording is an assumption: "Computing quota
    reached" in the emulator; any error naming a reached quota counts)."""
    return any("quota" in e.lower() and "reach" in e.lower() for e in errors)


def label_name(key: str) -> str:
    """A Qarnot label key as a Prometheus label name: `label_` + the key with other characters as `_`."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def pool_samples(view: PoolView, recommended: Mapping[str, ElasticSettings], label_keys: frozenset[str] = frozenset()):
    """Every sample of one pool as (family, extra label values, value): the single source of pool metrics.
    For `qarnot_pool_labels` the label values are (name, value) pairs. `label_keys`: the Qarnot label keys
    to export ("*": all; none: no `qarnot_pool_labels` series)."""
    yield "qarnot_pool_info", (view.name, view.profile or "", ",".join(sorted(view.tags))), 1.0
    for tag in sorted(set(view.tags)):
        yield "qarnot_pool_tag", (tag,), 1.0
    if label_keys:
        pairs = {label_name(k): v for k, v in view.labels if "*" in label_keys or k in label_keys}
        yield "qarnot_pool_labels", tuple(sorted(pairs.items())), 1.0
    for name in STATES:
        yield "qarnot_pool_status_state", (name,), 1.0 if view.state == name else 0.0
    if view.state_since is not None:
        yield "qarnot_pool_status_state_transition_timestamp_seconds", (), view.state_since.timestamp()
    yield "qarnot_pool_status_running_instances", (), view.running_instances
    yield "qarnot_pool_status_running_slots", (), view.running_instances * view.slots_per_node
    yield "qarnot_pool_spec_slots_per_node", (), view.slots_per_node
    yield "qarnot_pool_status_running_cores", (), view.running_cores
    yield "qarnot_pool_status_queued_or_running_task_instances", (), view.queued_or_running
    yield "qarnot_pool_status_error_messages", (), len(view.errors)
    yield "qarnot_pool_status_execution_seconds_total", (), view.execution_seconds
    if view.settings is not None:
        yield "qarnot_pool_spec_elastic", (), 1.0 if view.settings.is_elastic else 0.0
        for name in SETTINGS:
            yield f"qarnot_pool_spec_{UNITS.get(name, name)}", (), getattr(view.settings, name)
    yield "qarnot_pool_status_held_at_quota", (), 1.0 if held_at_quota(view.errors) else 0.0
    if view.credits_euros is not None:
        yield "qarnot_pool_credits_euros_total", (), view.credits_euros
    carbon = dict(view.carbon)
    for family, key in (("qarnot_pool_energy_wh_total", "energy_wh"), ("qarnot_pool_reused_energy_wh_total",
                        "reused_energy_wh"), ("qarnot_pool_carbon_grams_total", "carbon_g"),
                        ("qarnot_pool_equivalent_datacenter_carbon_grams_total", "equivalent_dc_carbon_g"),
                        ("qarnot_pool_pue_ratio", "pue"), ("qarnot_pool_ere_ratio", "ere"),
                        ("qarnot_pool_erf_ratio", "erf"), ("qarnot_pool_wue_liters_per_kwh", "wue")):
        if carbon.get(key) is not None:
            yield family, (), carbon[key]
    for policy in view.scaling.policies if view.scaling is not None else ():
        fixed = isinstance(policy, FixedPolicy)
        yield "qarnot_pool_status_scaling_policy_active", (policy.name, "Fixed" if fixed else "ManagedTasksQueue"), \
            1.0 if policy.name == view.active_policy else 0.0
        knobs = dict(min_total_slots=policy.slots_count, max_total_slots=policy.slots_count) if fixed else \
            {n: getattr(policy, n) for n in SCALING_KNOBS}
        for name, value in knobs.items():
            yield f"qarnot_pool_spec_scaling_{name}", (policy.name,), value
    for policy, settings in recommended.items():
        for name in SETTINGS:
            yield f"qarnot_pool_recommended_{UNITS.get(name, name)}", (policy,), getattr(settings, name)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class PoolCollector(Collector):
    """Per-pool metrics from the current views, read fresh at each scrape.

    `render()` serves them as exposition text, re-formatting only pools whose view (immutable, so
    compared by identity) or recommendations changed since the last scrape, and re-joining the text only
    when one did: 50,000 pools are ~1.45M series (140 MB), too many to format or even join in Python at
    every scrape. `collect()` yields the same samples as metric families, for use in any prometheus_client
    registry.
    """

    def __init__(self, views: Callable[[], Iterable[PoolView]],
                 recommendations: Callable[[], Recommendations] = dict, pool_labels: Iterable[str] = ()) -> None:
        self.views, self.recommendations = views, recommendations
        self.label_keys = frozenset(pool_labels)
        # The last rendering and what it was made of, in one attribute so a concurrent scrape never pairs a
        # body with another rendering's pools: uuid -> (view, recommendations, lines by family), body.
        self._last: tuple[dict[str, tuple[PoolView, object, dict[str, bytes]]], bytes | None] = ({}, None)

    def collect(self):
        families = {name: Metric(name, text, kind) if extra is None else
                    GaugeMetricFamily(name, text, labels=["pool_uuid", *extra]) if kind == "gauge" else
                    CounterMetricFamily(name.removesuffix("_total"), text, labels=["pool_uuid", *extra])
                    for name, (kind, text, extra) in FAMILIES.items()}
        recommendations = self.recommendations()
        for view in self.views():
            if view.state is not None:       # None: only ever seen as an unreadable document
                for family, labels, value in pool_samples(view, recommendations.get(view.uuid, {}), self.label_keys):
                    if FAMILIES[family][2] is None:
                        families[family].add_sample(family, {"pool_uuid": view.uuid, **dict(labels)}, value)
                    else:
                        families[family].add_metric([view.uuid, *labels], value)
        yield from families.values()

    def render(self) -> bytes:
        recommendations = self.recommendations()
        cache, body = self._last
        fresh: dict[str, tuple[PoolView, object, dict[str, bytes]]] = {}
        changed = False
        for view in self.views():
            if view.state is None:           # only ever seen as an unreadable document
                continue
            recommended = recommendations.get(view.uuid, {})
            cached = cache.get(view.uuid)
            if cached and cached[0] is view and cached[1] == recommended:
                fresh[view.uuid] = cached
            else:
                try:
                    lines = self._format(view, recommended, self.label_keys)
                except (TypeError, ValueError):   # a value from an old, unvalidated history: skip this pool only
                    lines = {}
                fresh[view.uuid], changed = (view, recommended, lines), True
        if changed or body is None or list(fresh) != list(cache):   # a pool changed, came, went or moved
            body = self._joined(fresh.values())
        self._last = fresh, body
        return body

    @staticmethod
    def _joined(pools) -> bytes:
        """The exposition text: each family's header, then its line of every pool, in the pools' order."""
        chunks: dict[str, list[bytes]] = {name: [] for name in FAMILIES}
        for _, _, lines in pools:
            for family, text in lines.items():
                chunks[family].append(text)
        return b"".join(HEADERS[name] + b"".join(chunks[name]) for name in FAMILIES)

    @staticmethod
    def _format(view: PoolView, recommended: Mapping[str, ElasticSettings], label_keys=frozenset()) -> dict[str, bytes]:
        lines: dict[str, str] = {}
        for family, labels, value in pool_samples(view, recommended, label_keys):
            extra = FAMILIES[family][2]
            pairs = labels if extra is None else zip(extra, labels)
            label_text = "".join(f',{k}="{_escape(v)}"' for k, v in pairs)
            lines[family] = lines.get(family, "") + f'{family}{{pool_uuid="{_escape(view.uuid)}"{label_text}}} ' \
                                                    f"{float(value)!r}\n"
        return {family: text.encode() for family, text in lines.items()}


class AccountCollector(Collector):
    """What the account may still spend and run, from the latest account figures, at each scrape."""

    def __init__(self, account: Callable[[], dict]) -> None:
        self.account = account

    def collect(self):
        figures = self.account()
        credits = GaugeMetricFamily("qarnot_account_credits_euros", "Credits (euros) left on the account.")
        if figures.get("account_credits") is not None:
            credits.add_metric([], figures["account_credits"])
        quotas = {k: GaugeMetricFamily(f"qarnot_quota_{k}", f"Computing quota: {k.replace('_', ' ')}, per "
                                       "scheduling type.", labels=["scheduling_type"])
                  for k in ("max_cores", "running_cores", "max_instances", "running_instances")}
        for kind, values in (figures.get("quotas") or {}).items():
            for key, family in quotas.items():
                if values.get(key) is not None:
                    family.add_metric([kind], values[key])
        budgets = {k: GaugeMetricFamily(f"qarnot_project_budget_{k}_euros", f"Project budget: {k} (euros).",
                                        labels=["project", "budget", "overrun_policy"])
                   for k in ("total", "consumed", "remaining")}
        for key, rows in figures.items():
            for b in rows if key.startswith("budgets:") else ():
                labels = [key.removeprefix("budgets:"), str(b.get("alias") or b.get("uuid")),
                          str(b.get("budgetOverrunPolicy") or "")]
                for name, family in budgets.items():
                    cents = b.get(f"{name}AmountInCents")
                    if isinstance(cents, (int, float)):
                        family.add_metric(labels, cents / 100)
        yield credits
        yield from quotas.values()
        yield from budgets.values()


class _FunctionCounter(Collector):
    """A counter whose value another object keeps (prometheus_client has gauges of functions only)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self.name, self.documentation, self.read = name, documentation, read

    def collect(self):
        yield CounterMetricFamily(self.name, self.documentation, value=self.read())


class TrackerMetrics:
    """The tracker's own health, plus the pool collector, in one registry."""

    def __init__(self, views: Callable[[], Iterable[PoolView]], *, db_size: Callable[[], float] = lambda: 0,
                 recommendations: Callable[[], Recommendations] = dict, pool_labels: Iterable[str] = (),
                 api_bytes: Callable[[], float] = lambda: 0, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)     # process_cpu_seconds_total, process_resident_memory_bytes, open fds...
        PlatformCollector(registry=r)    # python_info
        GCCollector(registry=r)          # python_gc_*
        self.polls = Counter("pool_tracker_polls", "Polls by outcome (ok or the failure reason).", ["outcome"],
                             registry=r)
        self.poll_duration = Histogram("pool_tracker_poll_duration_seconds", "Duration of a poll.", registry=r,
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.last_success = Gauge("pool_tracker_last_successful_poll_timestamp_seconds",
                                  "When the last successful poll finished (Unix time).", registry=r)
        self.full_listings = Counter("pool_tracker_full_listings", "Successful polls that listed every pool, "
                                     "finished ones included (the others listed live pools only).", registry=r)
        r.register(_FunctionCounter("pool_tracker_api_received_bytes", "Bytes of API answers received, as they "
                                    "came over the wire (polls and collectors).", api_bytes))
        self.events = Counter("pool_tracker_events_appended", "Events appended, by type.", ["type"], registry=r)
        self.commits = Counter("pool_tracker_advisor_commits", "Advisor commit decisions, by outcome "
                               "(applied, refused, failed).", ["outcome"], registry=r)
        self.retries = Counter("pool_tracker_api_retries", "API requests retried, by cause (status or error).",
                               ["reason"], registry=r)
        self.unreadable = Counter("pool_tracker_pool_documents_unreadable", "Pool documents that failed to parse "
                                  "and were quarantined, summed over polls.", registry=r)
        Gauge("pool_tracker_pools_quarantined", "Pools whose latest document could not be read.", registry=r
              ).set_function(lambda: sum(v.unreadable is not None for v in views()))
        Gauge("pool_tracker_database_size_bytes", "Size of the DuckDB file.", registry=r).set_function(db_size)
        Info("pool_tracker_build", "pool-tracker version.", registry=r).info({"version": __version__})
        self.collections = Counter("pool_tracker_figures_collected", "Cost, carbon and account figures collected, by "
                                   "what (pools, account) and outcome (ok, failed).", ["what", "outcome"], registry=r)
        self.lake_publishes = Counter("pool_tracker_lake_publishes", "Lake publish runs, by outcome (ok, failed).",
                                      ["outcome"], registry=r)
        self.lake_rows = Counter("pool_tracker_lake_rows_published", "Rows published to the lake, by table.",
                                 ["table"], registry=r)
        self.lake_unpublished = Gauge("pool_tracker_lake_unpublished_rows", "Rows of the history the lake lacked "
                                      "after the last publish run, by table.", ["table"], registry=r)
        self.lake_last_success = Gauge("pool_tracker_lake_last_success_timestamp_seconds",
                                       "When the last publish run without error finished (Unix time).", registry=r)
        self.account: Callable[[], dict] = dict
        r.register(AccountCollector(lambda: self.account()))
        self.pools = PoolCollector(views, recommendations, pool_labels)
        # Every outcome an alert compares exists from the first scrape, at 0: "no success yet" is a series at 0,
        # not a missing series that makes `... unless ok > 0` or `ok == 0` silently empty.
        for outcome in POLL_OUTCOMES:
            self.polls.labels(outcome)
        for outcome in COMMIT_OUTCOMES:
            self.commits.labels(outcome)
        for reason in RETRY_REASONS:
            self.retries.labels(reason)
        for outcome in ("ok", "failed"):         # at 0 without [lake] too: PoolTrackerLakeNotPublishing compares them
            self.lake_publishes.labels(outcome)

    def observe_poll(self, result, finished_at: float) -> None:
        self.polls.labels(result.outcome).inc()
        self.poll_duration.observe(result.duration_seconds)
        self.unreadable.inc(result.unreadable)
        for kind, count in result.events_by_type.items():
            self.events.labels(kind).inc(count)
        if result.ok:
            self.last_success.set(finished_at)
            if result.complete:
                self.full_listings.inc()

    def observe_collection(self, what: str, result) -> None:
        self.collections.labels(what, "ok").inc(result.fetched)
        self.collections.labels(what, "failed").inc(result.failed)

    def observe_publish(self, result, finished_at: float) -> None:
        self.lake_publishes.labels("failed" if result.error else "ok").inc()
        for table, count in result.rows.items():
            self.lake_rows.labels(table).inc(count)
        for table, count in result.unpublished.items():
            self.lake_unpublished.labels(table).set(count)
        if not result.error:
            self.lake_last_success.set(finished_at)

    def count_commit(self, outcome: str) -> None:
        self.commits.labels(outcome).inc()

    def count_retry(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry) + self.pools.render(), CONTENT_TYPE_LATEST
