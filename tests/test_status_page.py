"""The read-only status page at `/`, loaded in a real headless browser (Debian's chromium): the fleet table,
and a pool's timeline of demand against supply with its recommendation, as an operator sees them."""
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import httpx
import pytest

from policies.settings import ElasticSettings
from tracker.config import load_config
from tracker.daemon import Daemon
from tracker.derive import derive_poll
from tracker.events import Event
from tracker.snapshot import PoolSnapshot
from tracker.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
SETTINGS = ElasticSettings(is_elastic=True, min_total_slots=0, max_total_slots=8, min_idle_slots=2,
                           min_idle_time_seconds=300, resize_factor=0.5, resize_period=90)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    path = tmp_path_factory.mktemp("status") / "h.duckdb"
    store = Store(path)
    for step, (queue, slots) in enumerate([(0, 0), (6, 2), (12, 8), (9, 8), (2, 4), (0, 2)]):
        at = T0 + timedelta(minutes=15 * step)
        snaps = [PoolSnapshot("uuid-render", "render <b>&", "FullyExecuting", running_instance_count=slots,
                              queued_or_running_task_instances=queue, elastic=SETTINGS),
                 PoolSnapshot("uuid-broken", "broken", "Failure", errors=("boom",))]
        store.append_poll(at, at, derive_poll(store.views, snaps, at), pools_seen=2)
    store.append_events([Event("recommendation_made", "uuid-render", at, at, payload={
        "policy": "search", "settings": SETTINGS.with_(max_total_slots=12, min_idle_slots=1).to_api(),
        "reason_code": "faster", "reason": "p95 wait 410 s -> 95 s", "confidence": 0.4,
        "evidence": {"current": {"slot_hours": 4.0, "wait_p95_seconds": 410.0},
                     "recommended": {"slot_hours": 4.5, "wait_p95_seconds": 95.0}}})])
    store.close()
    config, _ = load_config(env={}, overrides={"store.path": str(path), "http.port": 0,
                                               "api.url": "http://127.0.0.1:9"})
    d = Daemon(config, "test-token-1")
    d.web.start()
    yield d
    d.web.stop()
    d.store.close()


class Text(HTMLParser):
    """The visible text of each table row and the polylines of the chart, from the browser's DOM."""

    def __init__(self):
        super().__init__()
        self.rows, self.lines, self._row, self.hidden_pool = [], {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append("")
        elif tag == "polyline":
            self.lines[attrs["class"]] = attrs["points"].split()
        elif tag == "section" and attrs.get("id") == "pool":
            self.hidden_pool = "hidden" in attrs

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            self.rows.append(self._row)
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


def browse(url):
    """The DOM after the page's scripts ran (virtual time waits for its fetches)."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    page = Text()
    page.feed(out.stdout)
    return out.stdout, page


needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")


@needs_browser
def test_the_fleet_table_shows_every_pool_with_its_state_and_recommendation(daemon):
    dom, page = browse(daemon.web.url + "/")
    assert "2 pools, 2 slots running, 0 task instances queued or running" in dom
    rows = {r[-1]: r for r in page.rows if len(r) == 9}
    assert rows["uuid-render"][:6] == ["render <b>&", "FullyExecuting", "2", "0", "8", "0"]   # shown as text
    assert rows["uuid-render"][7] == "max 8->12, min_idle 2->1"
    assert rows["uuid-broken"][1] == "Failure" and page.hidden_pool


@needs_browser
def test_a_pools_timeline_draws_demand_and_supply_with_its_recommendations(daemon):
    dom, page = browse(daemon.web.url + "/#pool=uuid-render")
    assert not page.hidden_pool and "render <b>& (uuid-render), last 24 h: 6 changes" in dom.replace("&lt;", "<") \
        .replace("&gt;", ">").replace("&amp;", "&")
    heights = {name: [float(p.split(",")[1]) for p in points] for name, points in page.lines.items()}
    assert set(heights) == {"demand", "supply", "max"}
    # SVG y grows downwards: demand peaks (12 queued) above supply's peak (8 slots), at the max line
    assert min(heights["demand"]) < min(heights["supply"]) == pytest.approx(min(heights["max"]))
    (rec,) = [r for r in page.rows if r and r[0] == "search"]
    assert rec[1] == "max 8 → 12, min_idle 2 → 1" and rec[2] == "faster: p95 wait 410 s -> 95 s"
    assert rec[4] == "410 → 95"


def test_api_clients_still_get_the_json_index_and_the_data_endpoints(daemon):
    index = httpx.get(daemon.web.url + "/", timeout=10).json()
    assert "/status/fleet" in index["endpoints"] and "/metrics" in index["endpoints"]
    fleet = httpx.get(daemon.web.url + "/status/fleet", timeout=10).json()
    assert {p["name"] for p in fleet} == {"render <b>&", "broken"}
    assert httpx.get(daemon.web.url + "/status/pools/uuid-render?hours=-1", timeout=10).status_code == 400
    html = httpx.get(daemon.web.url + "/", headers={"Accept": "text/html"}, timeout=10)
    assert html.headers["content-type"].startswith("text/html") and not re.search(r"<script[^>]+src=", html.text)
