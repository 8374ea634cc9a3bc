"""A real Prometheus scrapes the daemon (tracking the emulator); every PromQL expression in the shipped
dashboards returns data, and every alert rule is valid and evaluates over metrics that exist."""
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="Debian's prometheus package is not installed (.ci/run installs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_exprs():
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield f"{path.stem}: {panel['title']}", target["expr"]


def rule_exprs():
    import yaml

    groups = yaml.safe_load((ROOT / "dashboards" / "alerts.yml").read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


class FastClock:
    """Simulated time at 1500x, so the advisor has hours of history within seconds."""

    def __init__(self):
        self.t0, self.start = time.monotonic(), 1_800_000_000.0

    def __call__(self):
        return self.start + (time.monotonic() - self.t0) * 1500


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    clock = FastClock()
    with Emulator.running(pools=12, seed=4, token="prom-token", clock=clock) as emu:
        config, _ = load_config(env={}, overrides={
            "api.url": emu.url, "api.clock": "server", "poll.interval_seconds": 1, "poll.jitter_seconds": 0,
            "store.path": str(tmp / "t.duckdb"), "http.port": free_port(), "advisor.enabled": False,
            "advisor.policies": ["search", "percentiles"], "costs.run_every_seconds": 1,
            "costs.account_interval_seconds": 10, "costs.pool_interval_seconds": 60})
        daemon = Daemon(config, emu.token)
        daemon.start()
        while clock() < clock.start + 6.5 * 3600:      # the policies' minimum history
            time.sleep(0.5)
        daemon.advise()
        assert daemon.advisor.latest, "the advisor recommended nothing"
        port = free_port()
        (tmp / "prometheus.yml").write_text(
            f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
            f"rule_files: ['{ROOT / 'dashboards' / 'alerts.yml'}']\n"
            f"scrape_configs:\n  - job_name: pool-tracker\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{config.http.port}']}}]\n")
        proc = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while not ready(url):                 # 503 while it loads its TSDB: queries would fail then
                assert time.monotonic() < deadline and proc.poll() is None, "Prometheus never became ready"
                time.sleep(0.2)
            while not query(url, 'count(rate(pool_tracker_polls_total[30s]) > 0)'):
                assert time.monotonic() < deadline, "Prometheus never scraped two samples from the daemon"
                time.sleep(0.5)
            yield url, daemon
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            daemon.stop()


def ready(url):
    try:
        return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def query(url, expr):
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    except httpx.TransportError:
        return None
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


@pytest.mark.parametrize("where,expr", list(dashboard_exprs()), ids=lambda v: v if ":" in v else "")
def test_every_dashboard_expression_returns_data(prometheus, where, expr):
    url, daemon = prometheus
    pool = next(iter(daemon.store.views.values())).uuid
    concrete = expr.replace("$__rate_interval", "30s").replace("$pool", pool).replace("$job", ".+") \
        .replace("$instance", ".+").replace("$tracker", ".*")
    assert query(url, concrete), f"{where}: no data for {concrete}"


@pytest.mark.parametrize("alert,expr", rule_exprs())
def test_every_alert_rule_evaluates_over_metrics_that_exist(prometheus, alert, expr):
    url, _ = prometheus
    assert query(url, expr) is not None
    for metric in set(re.findall(r"\b(qarnot_pool_\w+|pool_tracker_\w+)", expr)):
        assert query(url, metric), f"{alert}: {metric} has no samples"
    rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r["health"] for g in rules for r in g["rules"]}
    assert loaded[alert] in ("ok", "unknown")


def test_promtool_accepts_the_rules_and_the_live_exposition(prometheus):
    check = subprocess.run(["promtool", "check", "rules", str(ROOT / "dashboards" / "alerts.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    _, daemon = prometheus
    body = httpx.get(f"{daemon.web.url}/metrics", timeout=10).content
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
