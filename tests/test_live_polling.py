"""Polls that list only live pools, checked against a tracker listing every pool at the same instants and
against the emulator's ground truth, over two simulated days of pools finishing, failing, being created
and deleted; plus what the live listing asks of the API and how it falls back when the API will not."""
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest

from tracker.api import ALWAYS_SENT, SEARCH_LIMIT, SELECTED, QarnotClient
from tracker.emulator import Emulator
from tracker.emulator.documents import pool_document, selected
from tracker.parse import parse_pool
from tracker.poll import Sweeps, poll_once, server_clock
from tracker.store import Store

POLL_EVERY = 180.0        # simulated seconds between polls
SWEEP_EVERY = 1800.0      # between full listings of the live tracker
DAYS = 2
START = 1_800_000_000.0   # on an hour boundary


class ManualClock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


def _post(emu, path, body=None, method="POST"):
    response = httpx.request(method, f"{emu.url}{path}", headers={"Authorization": emu.token}, json=body)
    response.raise_for_status()
    return response.json() if response.content else None


def _script(emu, live_pools):
    """What happens to the account, by simulated hour: closes, deletions (live and finished pools),
    new pools, and a pool created and closed between two polls."""
    new = []

    def create(name):
        return _post(emu, "/pools", {"name": name, "profile": "docker-batch", "instanceCount": 1,
                                     "elasticProperty": {"isElastic": True, "minTotalSlots": 0, "maxTotalSlots": 4,
                                                         "minIdleSlots": 0, "minIdleTimeSeconds": 0,
                                                         "rampResizeFactor": 1.0, "resizePeriod": 90}})["uuid"]
    return {
        2: lambda: [_post(emu, f"/pools/{u}/close") for u in live_pools[:5]],
        5: lambda: [_post(emu, f"/pools/{u}", method="DELETE") for u in live_pools[5:9]],
        12: lambda: [_post(emu, f"/pools/{u}", method="DELETE") for u in live_pools[:3]],   # closed at hour 2
        14: lambda: new.extend(create(f"late-{i}") for i in range(3)),
        20: lambda: [_post(emu, f"/pools/{u}/close") for u in new[:1]],
        30: lambda: [_post(emu, f"/pools/{u}", method="DELETE") for u in new[1:2]],
        33: lambda: _post(emu, f"/pools/{create('blink')}/close"),     # closes before the next poll
    }


@pytest.fixture(scope="module")
def two_trackers(tmp_path_factory):
    """The same account polled at the same instants by a tracker listing every pool each time (the
    reference) and by one listing live pools between full sweeps."""
    clock, folder = ManualClock(), tmp_path_factory.mktemp("live")
    with Emulator.running(pools=30, seed=11, token="tok", clock=clock) as emu:
        api = QarnotClient(emu.url, emu.token)
        everything, live = Store(folder / "all.duckdb"), Store(folder / "live.duckdb")
        sweeps, results = Sweeps(timedelta(seconds=SWEEP_EVERY)), []
        live_pools = sorted(u for u, p in emu.cluster.pools.items() if p.close_at is None and p.fail_at is None)
        script = _script(emu, live_pools)
        while clock.now < START + DAYS * 86400:
            hour = int((clock.now - START) // 3600)
            if (clock.now - START) % 3600 == 0 and hour in script:
                script[hour]()
            assert poll_once(api, everything, clock=server_clock(api)).ok
            now = datetime.fromtimestamp(clock.now, timezone.utc)
            result = poll_once(api, live, clock=server_clock(api), live_only=sweeps.live_only(now))
            assert result.ok, result.message
            sweeps.record(result, now)
            results.append(result)
            clock.now += POLL_EVERY
        yield emu, everything, live, results, clock.now - POLL_EVERY
        everything.close()
        live.close()


def _events(store, where=""):
    """Events in a fixed order (a poll may list pools in another order than the other tracker's)."""
    return store.frame("SELECT type, pool_uuid, occurred_at, recorded_at, state_from, state_to, value_old, "
                       f"value_new, CAST(payload AS VARCHAR) AS payload FROM events {where} "
                       "ORDER BY recorded_at, pool_uuid, seq")


def test_most_polls_list_live_pools_only(two_trackers):
    _, _, _, results, _ = two_trackers
    full = sum(r.complete for r in results)
    assert 0 < full <= DAYS * 86400 / SWEEP_EVERY + 2
    assert len(results) - full >= (SWEEP_EVERY / POLL_EVERY - 1) * full       # all but one poll per sweep interval
    assert sum(r.pools_seen for r in results if not r.complete) < sum(r.pools_seen for r in results if r.complete) * 40


def test_live_polls_record_what_full_listings_record(two_trackers):
    """Every event but the vanishing of finished pools (seen at the next sweep) is the same, at the same
    time, with the same values; the pool created and closed between two polls is caught by a sweep."""
    emu, everything, live, _, _ = two_trackers
    blink = next(u for u, p in emu.cluster.pools.items() if p.name == "blink")
    where = f"WHERE type <> 'pool_vanished' AND pool_uuid IS DISTINCT FROM '{blink}'"
    reference, observed = _events(everything, where), _events(live, where)
    assert len(reference) > 500
    assert reference.equals(observed)
    assert live.views[blink].state == "Closed"


def test_deleted_pools_vanish_and_no_other_does(two_trackers):
    emu, everything, live, _, end = two_trackers
    deleted = {t.pool: t.at for t in emu.cluster.ground_truth if t.kind == "deleted"}
    assert len(deleted) >= 8
    for store, late in ((everything, POLL_EVERY), (live, SWEEP_EVERY + POLL_EVERY)):
        vanished = {r.pool_uuid: r.occurred_at.replace(tzinfo=timezone.utc).timestamp()
                    for r in store.frame("SELECT * FROM events WHERE type = 'pool_vanished'").itertuples()}
        assert vanished.keys() == deleted.keys()           # no false pool_vanished
        for pool, at in vanished.items():
            assert deleted[pool] <= at <= deleted[pool] + late
        assert store.views.keys() == emu.cluster.pools.keys()


def test_deleted_live_pools_vanish_at_the_next_poll(two_trackers):
    """A pool deleted while running is missed by the live listing, asked for, answered 404: gone at once."""
    emu, _, live, _, _ = two_trackers
    running_then_deleted = {t.pool for t in emu.cluster.ground_truth
                            if t.kind == "state" and t.new == "PendingDelete" and t.old not in ("Closed", "Failure")}
    assert len(running_then_deleted) >= 4
    gone = {t.pool: t.at for t in emu.cluster.ground_truth if t.kind == "deleted"}
    for r in live.frame("SELECT * FROM events WHERE type = 'pool_vanished'").itertuples():
        if r.pool_uuid in running_then_deleted:
            assert r.occurred_at.replace(tzinfo=timezone.utc).timestamp() <= gone[r.pool_uuid] + POLL_EVERY


def test_recorded_states_match_ground_truth(two_trackers):
    emu, _, live, _, end = two_trackers
    recorded = {(r.pool_uuid, r.state, round(r.start.replace(tzinfo=timezone.utc).timestamp()))
                for r in live.frame("SELECT * FROM state_intervals").itertuples()}
    marks = {}
    for t in emu.cluster.ground_truth:
        if t.kind == "state":
            marks.setdefault(t.pool, []).append((t.at, t.new))
    expected = [(pool, state, int(at)) for pool, seq in marks.items()
                for (at, state), (nxt, _) in zip(seq, seq[1:] + [(end, None)]) if nxt - at > POLL_EVERY]
    assert {state for _, state, _ in expected} >= {"Closed", "PendingDelete", "FullyExecuting"}
    missing = [e for e in expected if e not in recorded]
    assert not missing, f"{len(missing)} of {len(expected)} real states not recorded, e.g. {missing[:3]}"


# -- what a live listing asks for ------------------------------------------------------------------------
def test_the_selected_fields_read_as_the_whole_document():
    """The fields a live poll selects are every field parsing reads: the cut document parses the same."""
    clock = ManualClock()
    with Emulator.running(pools=40, seed=3, token="tok", clock=clock) as emu:
        for hours in (0, 1, 30):
            clock.now = START + hours * 3600
            for pool in emu.cluster.all_pools():
                doc = orjson.loads(orjson.dumps(pool_document(pool, clock.now)))
                cut = selected(doc, SELECTED)
                assert ALWAYS_SENT <= cut.keys()
                assert parse_pool(cut) == parse_pool(doc)


def test_live_listing_asks_for_unfinished_pools_and_fewer_bytes(tmp_path):
    clock = ManualClock()
    with Emulator.running(pools=40, seed=3, token="tok", clock=clock) as emu:
        finished = [u for u in sorted(emu.cluster.pools)][:25]
        for uuid in finished:
            emu.cluster.close_pool(uuid)
        clock.now += 6 * 3600
        api = QarnotClient(emu.url, emu.token)
        every = api.list_pools()
        full_bytes = api.bytes_received
        live = api.list_pools(live_only=True)
        live_bytes = api.bytes_received - full_bytes
        closed = {p.uuid for p in every if p.state in ("Closed", "Failure")}
        assert len(closed) >= 25
        assert {p.uuid for p in live} == {p.uuid for p in every} - closed
        assert api.search_refused is None
        assert live_bytes * 2 < full_bytes * len(live) / len(every)   # fewer pools, under half of each


def _serving(search):
    """A client whose API answers `POST /pools/search` with `search(body)` and pages two full documents."""
    docs = [{"uuid": f"p{i}", "name": f"p{i}", "state": "FullyExecuting", "instanceCount": 2,
             "runningInstanceCount": 2, "runningCoreCount": 8, "queuedOrRunningTaskInstancesCount": 1}
            for i in range(2)]
    asked = []

    def handler(request):
        asked.append(request.url.path)
        if request.url.path == "/pools/search":
            return search(orjson.loads(request.content), docs)
        return httpx.Response(200, json={"data": docs, "token": None, "nextToken": None, "isTruncated": False})
    return QarnotClient("http://api.test", "tok", transport=httpx.MockTransport(handler)), asked


@pytest.mark.parametrize("answer, why", [
    (lambda body, docs: httpx.Response(404, json={"message": "no such route"}), "refused"),
    (lambda body, docs: httpx.Response(200, json={"data": docs}), "no list"),
    (lambda body, docs: httpx.Response(200, json=[{"uuid": d["uuid"], "state": d["state"]} for d in docs]),
     "left out"),
    (lambda body, docs: httpx.Response(200, json=docs * (SEARCH_LIMIT // 2)), "cannot hold"),
])
def test_a_search_the_api_will_not_do_falls_back_to_full_pages_once_and_for_all(answer, why):
    """A search the API refuses or answers otherwise than asked never becomes pools without slots: the
    poll pages full documents instead, and later polls do not ask again."""
    client, asked = _serving(answer)
    for _ in range(2):
        pools = client.list_pools(live_only=True)
        assert [(p.uuid, p.running_instance_count) for p in pools] == [("p0", 2), ("p1", 2)]
    assert why in client.search_refused
    assert asked == ["/pools/search", "/pools/paginate", "/pools/paginate"]


def test_a_search_asks_only_for_unfinished_pools_and_the_fields_read():
    seen = []

    def answer(body, docs):
        seen.append(body)
        return httpx.Response(200, json=docs)
    client, asked = _serving(answer)
    client.list_pools(["prod"], live_only=True)
    (body,) = seen
    assert body["select"] == SELECTED and "Status" not in body["select"]
    assert body["filter"] == {"operator": "And", "filters": [
        {"operator": "Equal", "field": "Tags", "value": "prod"},
        {"operator": "NotIn", "field": "State", "value": ["Closed", "Failure"]}]}
    assert asked == ["/pools/search"]
