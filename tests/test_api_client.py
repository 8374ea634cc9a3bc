"""The tracker's own client: the SDK's scenarios against the emulator, every fault mode, and edge cases."""
import json

import httpx
import pytest

from policies.settings import ElasticSettings
from tracker.api import (ApiError, ApiUnavailable, AuthError, MalformedResponse, PoolNotFound, QarnotClient,
                         RetryPolicy, Unreadable)
from tracker.emulator import Faults

FAST = RetryPolicy(max_attempts=8, base_delay=0.001, max_delay=0.01, give_up_after_seconds=10)


def client(emu, **kwargs):
    kwargs.setdefault("retry", FAST)
    return QarnotClient(emu.url, emu.token, page_size=kwargs.pop("page_size", 5), **kwargs)


def test_lists_every_pool_across_pages_and_reads_one(emulator):
    with client(emulator) as api:
        pools = api.list_pools()
        assert sorted(p.uuid for p in pools) == sorted(emulator.cluster.pools)
        one = api.get_pool(pools[3].uuid)
        assert (one.uuid, one.name) == (pools[3].uuid, pools[3].name)
        assert {p.uuid for p in api.list_pools(tags=["bursty"])} == {
            u for u, p in emulator.cluster.pools.items() if "bursty" in p.tags}


def test_commit_elastic_takes_effect_and_reads_back(emulator):
    with client(emulator) as api:
        target = next(p for p in api.list_pools() if p.elastic and p.elastic.is_elastic)
        wanted = ElasticSettings(1, 9, 2, 240, 0.5, 120)
        assert api.commit_elastic(target.uuid, wanted).pool.elastic == wanted
        assert emulator.cluster.pools[target.uuid].model.settings == wanted


def test_unknown_pool_and_bad_token_are_typed_errors(emulator):
    with client(emulator) as api:
        with pytest.raises(PoolNotFound):
            api.get_pool("00000000-0000-0000-0000-000000000000")
    with pytest.raises(AuthError) as info:
        QarnotClient(emulator.url, "secret-but-wrong", retry=FAST).list_pools()
    assert "secret-but-wrong" not in str(info.value)


@pytest.mark.parametrize("faults", [
    Faults(server_errors=0.4, seed=1),
    Faults(rate_limited=0.4, retry_after_seconds=0.01, seed=2),
    Faults(dropped_connections=0.3, seed=3),
    Faults(latency_seconds=0.05),
], ids=["5xx", "429-retry-after", "dropped-connections", "latency"])
def test_transient_faults_are_retried_until_the_listing_is_complete(emulator, faults):
    emulator.faults.set(faults)
    retries = []
    with client(emulator, on_retry=retries.append) as api:
        assert len(api.list_pools()) == len(emulator.cluster.pools)
    assert bool(retries) == (faults.latency_seconds == 0)


@pytest.mark.parametrize("fault", ["malformed_json", "truncated_pages"])
def test_broken_bodies_raise_malformed(emulator, fault):
    emulator.faults.set(Faults(**{fault: 1.0}))
    with client(emulator) as api, pytest.raises(MalformedResponse, match="invalid JSON"):
        api.list_pools()


def test_token_revoked_mid_run(emulator):
    emulator.faults.set(Faults(token_invalid_after=2))
    with client(emulator, page_size=100) as api:
        api.list_pools()
        api.list_pools()
        with pytest.raises(AuthError, match="refused the token"):
            api.list_pools()


def test_api_down_gives_up_within_the_time_budget():
    api = QarnotClient("http://127.0.0.1:9", "tok", retry=RetryPolicy(4, 0.001, 0.002, 5))
    with pytest.raises(ApiUnavailable, match="cannot reach http://127.0.0.1:9"):
        api.list_pools()


# -- edge cases through a fake transport ------------------------------------------------------------
class Script:
    """A fake server answering from a list of (status, headers, body)."""

    def __init__(self, *answers):
        self.answers, self.seen = list(answers), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        status, headers, body = self.answers.pop(0)
        return httpx.Response(status, headers=headers, content=body)


def scripted(*answers, **kwargs):
    script, sleeps = Script(*answers), []
    api = QarnotClient("http://qarnot.test", "s3cr3t", transport=httpx.MockTransport(script),
                       sleep=sleeps.append, **kwargs)
    return api, script, sleeps


PAGE = b'{"data": [{"uuid": "a", "state": "Submitted"}], "isTruncated": false}'


def test_retry_after_is_honoured_and_the_token_sent_bare():
    api, script, sleeps = scripted((429, {"Retry-After": "7"}, b""), (503, {}, b"{}"), (200, {}, PAGE))
    assert [p.uuid for p in api.list_pools()] == ["a"]
    assert sleeps[0] == 7 and 0 < sleeps[1] <= RetryPolicy().max_delay
    assert script.seen[0].headers["Authorization"] == "s3cr3t"


def test_gives_up_after_max_attempts_naming_the_last_cause():
    api, _, sleeps = scripted(*[(502, {}, b'{"message": "bad gateway"}')] * 3,
                              retry=RetryPolicy(max_attempts=3, base_delay=1, max_delay=4))
    with pytest.raises(ApiUnavailable, match="HTTP 502 bad gateway") as info:
        api.list_pools()
    assert len(sleeps) == 2 and "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("status,error", [(401, AuthError), (403, AuthError), (404, PoolNotFound), (400, ApiError)])
def test_client_errors_are_not_retried(status, error):
    api, script, _ = scripted((status, {}, b'{"message": "nope"}'))
    with pytest.raises(error, match="nope"):
        api.get_pool("x")
    assert len(script.seen) == 1


@pytest.mark.parametrize("body", [b'{"items": []}', b'[1, 2]'])
def test_a_page_of_the_wrong_shape_is_malformed(body):
    api, _, _ = scripted((200, {}, body))
    with pytest.raises(MalformedResponse, match="no 'data' list"):
        api.list_pools()


@pytest.mark.parametrize("doc,uuid,match", [
    ({"state": "Submitted"}, None, "no 'uuid'"),
    ({"uuid": "a", "state": "Submitted", "runningCoreCount": "many"}, "a", "runningCoreCount"),
    ({"uuid": "b", "state": "Submitted", "queuedOrRunningTaskInstancesCount": 10**30}, "b", "queuedOrRunning"),
])
def test_an_unreadable_pool_is_quarantined_beside_the_readable_ones(doc, uuid, match):
    good = {"uuid": "ok", "state": "FullyExecuting", "runningCoreCount": 4}
    api, _, _ = scripted((200, {}, json.dumps({"data": [good, doc]}).encode()))
    readable, bad = api.list_pools()
    assert readable.uuid == "ok" and readable.running_core_count == 4
    assert isinstance(bad, Unreadable) and bad.uuid == uuid and match in bad.reason


def test_an_error_that_echoes_the_token_never_carries_it():
    api, _, _ = scripted((401, {}, b'{"message": "invalid token s3cr3t"}'))
    with pytest.raises(AuthError) as caught:
        api.get_pool("x")
    assert "s3cr3t" not in str(caught.value) and "invalid token <redacted>" in str(caught.value)


def test_a_retry_after_longer_than_a_poll_fails_at_once_and_says_how_long():
    api, script, _ = scripted((503, {"Retry-After": "3600"}, b"{}"))
    with pytest.raises(ApiUnavailable) as caught:
        api.list_pools()
    assert caught.value.retry_after == 3600 and "3600" in str(caught.value) and len(script.seen) == 1


def test_a_repeated_page_token_cannot_loop_forever():
    page = b'{"data": [], "isTruncated": true, "nextToken": "same"}'
    api, _, _ = scripted((200, {}, page), (200, {}, page))
    with pytest.raises(MalformedResponse, match="repeated a page token"):
        api.list_pools()


def test_missing_token_is_refused_up_front():
    with pytest.raises(AuthError, match="QARNOT_CLIENT_TOKEN"):
        QarnotClient("http://qarnot.test", "")
