"""Prometheus metrics, designed the kube-state-metrics way. The only prometheus_client user.

Per-pool series come from the current projection, read fresh at each scrape by a custom collector, so a
deleted pool simply disappears. The tracker's own health is kept in ordinary counters and histograms.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from policies.settings import API_FIELDS, ElasticSettings
from tracker import __version__
from tracker.events import PoolView
from tracker.snapshot import STATES

SETTINGS = tuple(API_FIELDS)  # min_total_slots, max_total_slots, ...
Recommendations = Mapping[str, Mapping[str, ElasticSettings]]  # pool uuid -> policy -> settings


class PoolCollector(Collector):
    """Turns the current pool views into metric families at each scrape."""

    def __init__(self, views: Callable[[], Iterable[PoolView]],
                 recommendations: Callable[[], Recommendations] = dict) -> None:
        self.views, self.recommendations = views, recommendations

    def collect(self):
        pool = ["pool_uuid"]
        info = InfoMetricFamily("qarnot_pool", "Static properties of a pool.",
                                labels=["pool_uuid", "name", "profile", "tags"])
        state = GaugeMetricFamily("qarnot_pool_state", "1 for the pool's current state, 0 for the others.",
                                  labels=pool + ["state"])
        since = GaugeMetricFamily("qarnot_pool_state_transition_timestamp_seconds",
                                  "When the pool entered its current state (API time).", labels=pool)
        slots = GaugeMetricFamily("qarnot_pool_running_instances", "Running instances (slots).", labels=pool)
        cores = GaugeMetricFamily("qarnot_pool_running_cores", "Running cores.", labels=pool)
        queued = GaugeMetricFamily("qarnot_pool_queued_or_running_task_instances",
                                   "Task instances queued or running on the pool.", labels=pool)
        errors = GaugeMetricFamily("qarnot_pool_errors", "Errors the API reports for the pool.", labels=pool)
        execution = CounterMetricFamily("qarnot_pool_execution_seconds",
                                        "Total CPU execution time of the pool's instances.", labels=pool)
        elastic = GaugeMetricFamily("qarnot_pool_spec_elastic", "1 if the pool is elastic.", labels=pool)
        spec = {name: GaugeMetricFamily(f"qarnot_pool_spec_{name}", f"Configured elastic {name}.", labels=pool)
                for name in SETTINGS}
        recommended = {name: GaugeMetricFamily(f"qarnot_pool_recommended_{name}",
                                               f"Recommended elastic {name}, per policy.", labels=pool + ["policy"])
                       for name in SETTINGS}
        for view in self.views():
            uid = [view.uuid]
            info.add_metric([view.uuid, view.name, view.profile or "", ",".join(sorted(view.tags))], {})
            for name in STATES:
                state.add_metric(uid + [name], 1.0 if view.state == name else 0.0)
            if view.state_since is not None:
                since.add_metric(uid, view.state_since.timestamp())
            slots.add_metric(uid, view.running_instances)
            cores.add_metric(uid, view.running_cores)
            queued.add_metric(uid, view.queued_or_running)
            errors.add_metric(uid, len(view.errors))
            execution.add_metric(uid, view.execution_seconds)
            if view.settings is not None:
                elastic.add_metric(uid, 1.0 if view.settings.is_elastic else 0.0)
                for name in SETTINGS:
                    spec[name].add_metric(uid, getattr(view.settings, name))
        for uuid, by_policy in self.recommendations().items():
            for policy, settings in by_policy.items():
                for name in SETTINGS:
                    recommended[name].add_metric([uuid, policy], getattr(settings, name))
        yield from (info, state, since, slots, cores, queued, errors, execution, elastic)
        yield from spec.values()
        yield from recommended.values()


class TrackerMetrics:
    """The tracker's own health, plus the pool collector, in one registry."""

    def __init__(self, views: Callable[[], Iterable[PoolView]], *, db_size: Callable[[], float] = lambda: 0,
                 recommendations: Callable[[], Recommendations] = dict,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("pool_tracker_polls", "Polls by outcome (ok or the failure reason).", ["outcome"],
                             registry=r)
        self.poll_duration = Histogram("pool_tracker_poll_duration_seconds", "Duration of a poll.", registry=r,
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.last_success = Gauge("pool_tracker_last_successful_poll_timestamp_seconds",
                                  "When the last successful poll finished (Unix time).", registry=r)
        self.events = Counter("pool_tracker_events_appended", "Events appended, by type.", ["type"], registry=r)
        self.retries = Counter("pool_tracker_api_retries", "API requests retried, by cause (status or error).",
                               ["reason"], registry=r)
        Gauge("pool_tracker_database_size_bytes", "Size of the DuckDB file.", registry=r).set_function(db_size)
        Info("pool_tracker_build", "pool-tracker version.", registry=r).info({"version": __version__})
        r.register(PoolCollector(views, recommendations))

    def observe_poll(self, result, finished_at: float) -> None:
        self.polls.labels(result.outcome).inc()
        self.poll_duration.observe(result.duration_seconds)
        for kind, count in result.events_by_type.items():
            self.events.labels(kind).inc(count)
        if result.ok:
            self.last_success.set(finished_at)

    def count_retry(self, reason: str) -> None:
        self.retries.labels(reason).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
