"""Commits change only what they mean to: checked on the emulator's stored documents before and after, for
elastic, static, multi-slot and scaling-managed pools, and as a property of the pure document change."""
import httpx
import pytest
from hypothesis import given, strategies as st

from policies.scaling import Always, FixedPolicy, ManagedTasksQueuePolicy, Scaling, Weekly
from policies.settings import ElasticSettings
from tracker.api import Forbidden, QarnotClient
from tracker.commits import VOLATILE, CommitRefused, elastic_change, scaling_change
from tracker.emulator import Emulator

WANTED = ElasticSettings(1, 9, 2, 240, 0.5, 120)
MANAGED = {"type": "ManagedTasksQueue", "name": "default", "minTotalSlots": 0, "maxTotalSlots": 12, "minIdleSlots": 0,
           "minIdleTimeSeconds": 90, "scalingFactor": 0.2, "enabledPeriods": [{"type": "Always"}]}
OFFICE = {"type": "Fixed", "name": "office", "slotsCount": 6, "enabledPeriods": [
    {"type": "Weekly", "days": ["monday", "tuesday"], "startTimeUtc": "08:00:00", "endTimeUtc": "18:00:00"}]}
SCHEDULE = Scaling((FixedPolicy("office", 8, (Weekly(("friday",), 9 * 3600, 17 * 3600),)),
                    ManagedTasksQueuePolicy("default", 0, 20, 1, 300, 0.25, (Always(),))))
ELASTIC = {"isElastic": True, "minTotalSlots": 0, "maxTotalSlots": 10, "minIdleSlots": 0, "minIdleTimeSeconds": 60,
           "rampResizeFactor": 1.0, "resizePeriod": 90}
POOLS = {   # name -> what the create request carries beyond name, profile and an unknown field
    "elastic": {"elasticProperty": ELASTIC},
    "static": {"instanceCount": 3},
    "multi-slot": {"elasticProperty": ELASTIC, "multiSlotsSettings": {"slotsPerNode": 4}, "schedulingType": "OnDemand"},
    "one-policy": {"scaling": {"policies": [MANAGED]}},
    "schedule": {"scaling": {"policies": [OFFICE, MANAGED]}},
}


@pytest.fixture(scope="module")
def pools():
    with Emulator.running(pools=0, speed=60.0, token="commit-token") as emu:
        uuids = {}
        for name, extra in POOLS.items():
            body = {"name": name, "profile": "docker-batch", "tags": ["t"], "labels": {"team": "a"},
                    "somethingNew": {"kept": [1, 2]}, **extra}
            answer = httpx.post(f"{emu.url}/pools", json=body, headers={"Authorization": emu.token})
            assert answer.status_code == 200, answer.text
            uuids[name] = answer.json()["uuid"]
        with QarnotClient(emu.url, emu.token) as api:
            yield api, uuids


def stable(doc):
    """A document without the fields that move by themselves."""
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def commit_and_compare(api, uuid, commit):
    before = api.get_pool_document(uuid)
    result = commit()
    after = api.get_pool_document(uuid)
    for field in set(stable(before)) | set(stable(after)):
        if field not in result.changed:
            assert before.get(field) == after.get(field), field
    return result, before, after


@pytest.mark.parametrize("name", ["elastic", "multi-slot"])
def test_an_elastic_commit_changes_the_elastic_settings_and_nothing_else(pools, name):
    api, uuids = pools
    result, before, after = commit_and_compare(api, uuids[name], lambda: api.commit_elastic(uuids[name], WANTED))
    assert result.changed == ["elasticProperty"] and result.pool.elastic == WANTED
    assert after["somethingNew"] == {"kept": [1, 2]} and after["multiSlotsSettings"] == before["multiSlotsSettings"]


def test_a_pool_with_one_managed_policy_takes_the_knobs_in_its_scaling_document(pools):
    api, uuids = pools
    uuid = uuids["one-policy"]
    result, before, after = commit_and_compare(api, uuid, lambda: api.commit_elastic(uuid, WANTED))
    assert result.changed == ["scaling"]
    (policy,) = after["scaling"]["policies"]
    assert (policy["name"], policy["maxTotalSlots"], policy["minIdleSlots"], policy["scalingFactor"]) == \
        ("default", 9, 2, 0.5)
    assert after.get("elasticProperty") == before.get("elasticProperty")


def test_a_scaling_document_is_committed_in_one_write_and_reads_back(pools):
    api, uuids = pools
    uuid = uuids["schedule"]
    result, _, after = commit_and_compare(api, uuid, lambda: api.commit_scaling(uuid, SCHEDULE))
    assert result.changed == ["scaling"]
    assert Scaling(Scaling.from_api(after["scaling"]).policies) == SCHEDULE


@pytest.mark.parametrize("name,commit,code", [
    ("static", lambda api, uuid: api.commit_elastic(uuid, WANTED), "static_pool"),
    ("schedule", lambda api, uuid: api.commit_elastic(uuid, WANTED), "scaling_managed"),
    ("elastic", lambda api, uuid: api.commit_scaling(uuid, SCHEDULE), "legacy_pool"),
])
def test_what_cannot_be_committed_safely_is_refused_with_a_reason_and_nothing_is_sent(pools, name, commit, code):
    api, uuids = pools
    before = stable(api.get_pool_document(uuids[name]))
    with pytest.raises(CommitRefused) as refused:
        commit(api, uuids[name])
    assert refused.value.code == code and stable(api.get_pool_document(uuids[name])) == before


def test_a_commit_to_a_pool_that_is_not_running_is_forbidden_not_a_token_problem(pools):
    api, uuids = pools
    httpx.post(f"{api.base_url}/pools/{uuids['multi-slot']}/close", headers={"Authorization": "commit-token"})
    with pytest.raises(Forbidden, match="not running"):
        api.commit_elastic(uuids["multi-slot"], WANTED)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3), max_leaves=8)


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("elasticProperty", "scaling")),
                       json_values, max_size=8), st.booleans())
def test_the_document_sent_differs_from_the_one_read_only_in_the_part_changed(fields, as_scaling):
    doc = {**fields, "elasticProperty": ELASTIC, "scaling": {"policies": [MANAGED]} if as_scaling else None}
    body = elastic_change(doc, WANTED)
    assert {k: v for k, v in body.items() if k != ("scaling" if as_scaling else "elasticProperty")} == \
        {k: v for k, v in doc.items() if k != ("scaling" if as_scaling else "elasticProperty")}
    if as_scaling:
        assert scaling_change(doc, SCHEDULE)["scaling"] == SCHEDULE.to_api()
    else:
        assert body["elasticProperty"]["isElastic"] is True
