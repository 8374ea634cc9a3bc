"""The shipped Grafana dashboards as Grafana reads them: round-tripped through grafana-foundation-sdk
(Grafana's own generated types), so an unknown or misspelled key fails; units and descriptions on
every panel; job/instance variables on every query; pools chosen by uuid; a provisioned data source
that does not claim to be the default. `tests/test_prometheus_e2e.py` runs every query on a real Prometheus."""
import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.dashboard import Dashboard

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
UNITS = {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}
register_default_plugins()       # panel options, field config and Prometheus queries get their typed models


def lost_keys(given, back, path=""):
    """Every key of `given` that did not survive the round trip, and every value that changed."""
    if isinstance(given, dict):
        if not isinstance(back, dict):
            return [f"{path}: became {type(back).__name__}"]
        return [p for k, v in given.items()
                for p in ([f"{path}/{k}: unknown to Grafana's schema"] if k not in back else lost_keys(v, back[k], f"{path}/{k}"))]
    if isinstance(given, list):
        if not isinstance(back, list) or len(back) != len(given):
            return [f"{path}: list changed"]
        return [p for i, (a, b) in enumerate(zip(given, back)) for p in lost_keys(a, b, f"{path}[{i}]")]
    return [] if given == back else [f"{path}: {given!r} became {back!r}"]


def load(path):
    return json.loads(path.read_text())


def panels(path):
    return load(path)["panels"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_round_trip_through_grafanas_types_loses_nothing(path):
    given = load(path)
    back = json.loads(json.dumps(Dashboard.from_json(given), cls=JSONEncoder))
    assert lost_keys(given, back) == []


def test_the_round_trip_catches_a_misspelled_key():
    given = load(DASHBOARDS[0])
    given["panels"][0]["fieldConfig"]["defaults"]["unti"] = "s"
    given["panels"][0]["targets"][0]["exp"] = "up"
    back = json.loads(json.dumps(Dashboard.from_json(given), cls=JSONEncoder))
    assert lost_keys(given, back) == ["/panels[0]/targets[0]/exp: unknown to Grafana's schema",
                                      "/panels[0]/fieldConfig/defaults/unti: unknown to Grafana's schema"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_has_a_known_unit_and_a_description(path):
    for panel in panels(path):
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in UNITS, f"{panel['title']}: unit {unit!r}"
        assert panel.get("description"), panel["title"]


SELECTOR = re.compile(r"\b(qarnot_pool_\w+|pool_tracker_\w+|process_\w+|up)\b(\{[^}]*\})?")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_series_is_filtered_by_job_and_instance(path):
    """Two trackers in one Prometheus (HA, staging) must not double every sum."""
    names = {v["name"] for v in load(path)["templating"]["list"]}
    assert {"datasource", "job", "instance", "tracker"} <= names
    for panel in panels(path):
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            for metric, selector in SELECTOR.findall(target["expr"]):
                assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, (panel["title"], metric)
                assert 'tracker=~"$tracker"' in selector, (panel["title"], metric)   # many daemons, one Prometheus


def test_the_drilldown_selects_pools_by_uuid_and_shows_their_name():
    path = ROOT / "dashboards" / "pool-drilldown.json"
    (pool,) = [v for v in load(path)["templating"]["list"] if v["name"] == "pool"]
    regex = pool["regex"].strip("/").replace("(?<", "(?P<")
    line = 'qarnot_pool_info{instance="t:9108", job="pool-tracker", name="render", pool_uuid="u-1", profile="p"} 1'
    assert re.search(regex, line).groupdict() == {"text": "render", "value": "u-1"}
    assert pool["multi"]
    for panel in panels(path):
        for target in panel["targets"]:
            assert 'pool_uuid=~"$pool"' in target["expr"] and "$pool" not in target["expr"].replace(
                'pool_uuid=~"$pool"', ""), panel["title"]


def test_the_provisioned_data_source_is_not_a_second_default():
    sources = yaml.safe_load((ROOT / "dashboards" / "provisioning" / "datasources.yml").read_text())["datasources"]
    assert sources and all(s.get("isDefault") is not True and s.get("uid") for s in sources)
    for path in DASHBOARDS:
        (ds,) = [v for v in load(path)["templating"]["list"] if v["name"] == "datasource"]
        assert ds["current"]["value"] == sources[0]["uid"]
