"""The shipped alert rules: valid, each with summary, description and a runbook that exists, and each
unit-tested by `promtool test rules` in the failure modes it is meant for (dashboards/alerts.test.yml)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES, RULE_TESTS, RUNBOOKS = ROOT / "dashboards" / "alerts.yml", ROOT / "dashboards" / "alerts.test.yml", \
    ROOT / "docs" / "runbooks.md"
promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                              reason="Debian's prometheus package is not installed (.ci/run installs it)")


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.M)}


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_rule_tells_on_call_what_and_where_to_read(rule):
    notes = rule["annotations"]
    assert notes.get("summary") and notes.get("description") and rule["labels"]["severity"]
    path, _, anchor = notes["runbook_url"].partition("#")
    assert (ROOT / path).is_file() and anchor in anchors((ROOT / path).read_text()), notes["runbook_url"]
    assert "pool_uuid }}" not in notes["summary"], "summaries name pools by name; the uuid goes in the description"


def test_every_rule_has_unit_tests_that_expect_it_to_fire_and_to_stay_silent():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']}: no test where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']}: no test where it stays silent"


@promtool
def test_promtool_accepts_the_rules():
    out = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@promtool
def test_promtool_rule_unit_tests_pass():
    out = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
