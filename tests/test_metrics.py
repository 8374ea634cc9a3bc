"""Metrics from the projection: names, values, disappearance, and `promtool check metrics`."""
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from policies.settings import ElasticSettings
from tracker.events import PoolView
from tracker.metrics import PoolCollector, TrackerMetrics
from tracker.poll import PollResult

SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)
VIEWS = {
    "a": PoolView("a", name="render", profile="docker-batch", tags=("x", "prod"), state="FullyExecuting",
                  labels=(("cost-center", "42"), ("secret", "no"), ("team", "render")),
                  state_since=SINCE, running_instances=3, running_cores=12, queued_or_running=5,
                  settings=ElasticSettings(1, 8, 0, 60, 0.5, 90), execution_seconds=3600.0),
    "b": PoolView("b", name="idle", state="Failure", errors=("boom",)),
}


@pytest.fixture
def metrics():
    views = dict(VIEWS)
    m = TrackerMetrics(lambda: list(views.values()), db_size=lambda: 4096,
                       recommendations=lambda: {"a": {"search": ElasticSettings(0, 6, 1, 90, 1.0, 60)}},
                       pool_labels=["team", "cost-center"])
    m.views = views
    return m


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(m, metric, **labels):
    """A sample as a scraper sees it: parsed from the served exposition text."""
    return samples(m.exposition()[0].decode()).get((metric, tuple(sorted(labels.items()))))


def test_pool_series_follow_the_projection(metrics):
    assert value(metrics, "qarnot_pool_info", pool_uuid="a", name="render", profile="docker-batch",
                 tags="prod,x") == 1
    assert value(metrics, "qarnot_pool_status_state", pool_uuid="a", state="FullyExecuting") == 1
    assert value(metrics, "qarnot_pool_status_state", pool_uuid="a", state="Failure") == 0
    assert value(metrics, "qarnot_pool_status_running_cores", pool_uuid="a") == 12
    assert value(metrics, "qarnot_pool_status_execution_seconds_total", pool_uuid="a") == 3600
    assert value(metrics, "qarnot_pool_spec_max_total_slots", pool_uuid="a") == 8
    assert value(metrics, "qarnot_pool_recommended_max_total_slots", pool_uuid="a", policy="search") == 6
    assert value(metrics, "qarnot_pool_status_state_transition_timestamp_seconds", pool_uuid="a") == SINCE.timestamp()
    assert value(metrics, "qarnot_pool_status_error_messages", pool_uuid="b") == 1


def test_cached_rendering_follows_changes_and_matches_the_collector(metrics):
    value(metrics, "qarnot_pool_status_running_cores", pool_uuid="a")             # warm the cache
    metrics.views["a"] = PoolView("a", name="render", state="Closing", running_cores=2)
    assert value(metrics, "qarnot_pool_status_running_cores", pool_uuid="a") == 2
    assert value(metrics, "qarnot_pool_status_state", pool_uuid="a", state="Closing") == 1
    registry = CollectorRegistry()
    registry.register(metrics.pools)
    assert samples(generate_latest(registry).decode()) == samples(metrics.pools.render().decode())


def test_a_deleted_pool_disappears(metrics):
    del metrics.views["b"]
    assert value(metrics, "qarnot_pool_status_state", pool_uuid="b", state="Failure") is None


def test_tracker_health_metrics(metrics):
    metrics.observe_poll(PollResult(1, "ok", "", 2, 0.2, Counter(state_changed=3)), 1000.0)
    metrics.observe_poll(PollResult(2, "unavailable", "down", 0, 1.5), 1010.0)
    metrics.count_retry("503")
    assert value(metrics, "pool_tracker_polls_total", outcome="ok") == 1
    assert value(metrics, "pool_tracker_polls_total", outcome="unavailable") == 1
    assert value(metrics, "pool_tracker_events_appended_total", type="state_changed") == 3
    assert value(metrics, "pool_tracker_last_successful_poll_timestamp_seconds") == 1000.0
    assert value(metrics, "pool_tracker_api_retries_total", reason="503") == 1
    assert value(metrics, "pool_tracker_poll_duration_seconds_count") == 2
    assert value(metrics, "pool_tracker_database_size_bytes") == 4096


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (.ci/run installs it)")
def test_promtool_finds_nothing_to_complain_about(metrics):
    body, _ = metrics.exposition()
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr


def test_scaling_policies_and_slots_are_exported_the_kube_state_metrics_way():
    from policies.scaling import Always, FixedPolicy, ManagedTasksQueuePolicy, Scaling, Weekly

    scaling = Scaling((FixedPolicy("office", 20, (Weekly(("monday",), 8 * 3600, 18 * 3600),)),
                       ManagedTasksQueuePolicy("default", 0, 40, 2, 300, 0.2, (Always(),))))
    view = PoolView("p", name="render", state="FullyExecuting", running_instances=3, slots_per_node=4,
                    scaling=scaling, active_policy="office")
    text = PoolCollector(lambda: [view]).render().decode()
    assert 'qarnot_pool_status_running_slots{pool_uuid="p"} 12.0' in text
    assert 'qarnot_pool_status_scaling_policy_active{pool_uuid="p",scaling_policy="office",type="Fixed"} 1.0' in text
    assert 'qarnot_pool_status_scaling_policy_active{pool_uuid="p",scaling_policy="default",type="ManagedTasksQueue"} 0.0' in text
    assert 'qarnot_pool_spec_scaling_max_total_slots{pool_uuid="p",scaling_policy="office"} 20.0' in text
    assert 'qarnot_pool_spec_scaling_scaling_factor{pool_uuid="p",scaling_policy="default"} 0.2' in text
    assert 'qarnot_pool_spec_scaling_scaling_factor{pool_uuid="p",scaling_policy="office"}' not in text


def test_outcomes_alerts_compare_exist_at_zero_before_any_poll(metrics):
    """`ok` must exist before the first success, or "no poll ever succeeded" leaves the alert's right side empty."""
    for outcome in ("ok", "unauthorized", "unavailable", "malformed", "store_failed"):
        assert value(metrics, "pool_tracker_polls_total", outcome=outcome) == 0
    for outcome in ("applied", "refused", "failed"):
        assert value(metrics, "pool_tracker_advisor_commits_total", outcome=outcome) == 0
    assert value(metrics, "pool_tracker_api_retries_total", reason="unavailable") == 0


def test_kube_state_metrics_conventions(metrics):
    """status_ for observed, spec_ for configured, units in names, no _created, process_* present."""
    text = metrics.exposition()[0].decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "qarnot_pool_status_running_instances" in names and "qarnot_pool_running_instances" not in names
    assert value(metrics, "qarnot_pool_spec_resize_period_seconds", pool_uuid="a") == 90
    assert value(metrics, "qarnot_pool_status_error_messages", pool_uuid="b") == 1
    assert "_created" not in text
    assert value(metrics, "process_resident_memory_bytes") > 0 and "python_info" in names
    assert "(elasticProperty.maxTotalSlots)" in text          # HELP names the API field


def test_tags_one_series_each_and_labels_only_when_allow_listed(metrics):
    assert value(metrics, "qarnot_pool_tag", pool_uuid="a", tag="prod") == 1
    assert value(metrics, "qarnot_pool_labels", pool_uuid="a", label_team="render", label_cost_center="42") == 1
    assert "secret" not in metrics.exposition()[0].decode()
    bare = TrackerMetrics(lambda: list(VIEWS.values()))
    assert "qarnot_pool_labels{" not in bare.exposition()[0].decode()
    registry = CollectorRegistry()
    registry.register(metrics.pools)
    assert samples(generate_latest(registry).decode()) == samples(metrics.pools.render().decode())
