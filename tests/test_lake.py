"""The Parquet lake: the pure planner (properties), publishing from a real DuckDB store to a local folder
and to a local S3-compatible server (moto), each key exactly once across re-runs, crashes and gaps."""
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from tracker import lake_plan
from tracker.events import Event
from tracker.lake import Publisher, SCHEMAS, open_lake
from tracker.lake_plan import Span
from tracker.store import Store

# -- the planner --------------------------------------------------------------------------------------------


@st.composite
def tiled(draw):
    """A key space 1..last cut into consecutive spans, some of them published."""
    last = draw(st.integers(0, 300))
    cuts = sorted(draw(st.sets(st.integers(1, max(last, 1)), max_size=20)) | {1})
    spans = [Span(a, b - 1) for a, b in zip(cuts, cuts[1:] + [last + 1]) if a <= b - 1]
    published = [s for s in spans if draw(st.booleans())]
    return last, published


def keys_of(spans):
    return [k for s in spans for k in range(s.first, s.last + 1)]


@given(tiled())
def test_missing_is_exactly_what_no_file_covers(case):
    last, published = case
    gaps = lake_plan.missing(published, last)
    assert sorted(keys_of(gaps) + keys_of(published)) == list(range(1, last + 1))
    assert gaps == sorted(gaps) and lake_plan.overlaps(gaps + published) == []


@given(tiled(), st.integers(1, 40))
def test_chunks_tile_the_gaps_on_a_grid(case, size):
    last, published = case
    gaps = lake_plan.missing(published, last)
    cut = lake_plan.chunks(gaps, size)
    assert keys_of(cut) == keys_of(gaps)
    assert all(c.size <= size and (c.first - 1) // size == (c.last - 1) // size for c in cut)


@given(st.lists(st.sampled_from(["2030-01-01", "2030-01-02", "2030-01-03"]), max_size=30), st.integers(1, 5))
def test_day_runs_tile_a_chunk_and_never_mix_days(days, extra):
    keys = list(range(10, 10 + len(days)))
    chunk = Span(10, 10 + len(days) - 1 + extra)     # trailing keys without rows are claimed too
    runs = lake_plan.day_runs(keys, days, chunk)
    assert keys_of([span for span, *_ in runs]) == list(range(chunk.first, chunk.last + 1)) or not days
    for span, day, start, stop in runs:
        assert set(days[start:stop]) == {day} and all(span.first <= k <= span.last for k in keys[start:stop])
    assert sum(stop - start for *_, start, stop in runs) == len(keys)


@given(st.integers(1, 200), st.integers(1, 30), st.lists(st.integers(0, 8), max_size=6))
def test_restarting_after_crashes_publishes_every_key_exactly_once(last, size, crash_after):
    """A run writes some of its files, then dies; the next one plans from the files alone."""
    lake: list[Span] = []
    for limit in crash_after + [None]:
        todo = lake_plan.chunks(lake_plan.missing(lake, last), size)
        lake += todo if limit is None else todo[:limit]
    assert sorted(keys_of(lake)) == list(range(1, last + 1))


@given(st.text(max_size=80), st.text(max_size=80))
def test_the_default_tracker_id_is_always_a_valid_partition_name(host, stem):
    assert lake_plan.TRACKER_ID.match(lake_plan.default_tracker_id(host, stem))


def test_file_names_round_trip_and_sort_in_key_order():
    names = [lake_plan.file_name("acme-prod", Span(a, b)) for a, b in [(1, 9), (10, 99), (100, 100)]]
    assert names == sorted(names) and [lake_plan.parse_file_name(n) for n in names] == [
        ("acme-prod", Span(1, 9)), ("acme-prod", Span(10, 99)), ("acme-prod", Span(100, 100))]
    assert lake_plan.parse_file_name(".acme-prod-000000000001-000000000009.parquet.1a2b.tmp") is None


# -- publishing from a real store -----------------------------------------------------------------------------

T0 = datetime(2030, 1, 1, 23, 0, tzinfo=timezone.utc)


def record_polls(store, count, start=T0, pools=("p-1", "p-2"), step=timedelta(minutes=10)):
    """`count` polls, each changing every pool's cores: the log crosses midnight after six of them."""
    for i in range(count):
        at = start + i * step
        events = [Event("cores_changed", uuid, at, at, value_old=i, value_new=i + 1,
                        payload={"n": i} if i % 2 else None) for uuid in pools]
        store.append_poll(at - timedelta(seconds=1), at, events, pools_seen=len(pools))


def lake_rows(root, table, tracker="*"):
    """What an analyst's DuckDB reads from the lake."""
    glob = f"{root}/{table}/tracker={tracker}/*/*.parquet"
    return duckdb.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").df()


def published_files(root):
    return sorted(p.name for p in root.rglob("*.parquet"))


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "history.duckdb")
    yield store
    store.close()


def test_a_local_lake_gets_every_key_once_and_a_rerun_writes_nothing(store, tmp_path):
    lake = tmp_path / "lake"
    record_polls(store, 10)
    publisher = Publisher(str(lake), "alpha", store, batch_rows=7)
    first = publisher.publish()
    assert first.error is None and first.rows == {"polls": 10, "events": 20}
    assert first.published_through == {"polls": 10, "events": 20} and first.unpublished == {"polls": 0, "events": 0}
    events = lake_rows(lake, "events")
    assert sorted(events.seq) == list(range(1, 21))
    assert set(events.date.astype(str)) == {"2030-01-01", "2030-01-02"}      # split at midnight, UTC
    assert (events.date.astype(str) == events.recorded_at.dt.strftime("%Y-%m-%d")).all()
    assert set(events.tracker) == {"alpha"}
    files = published_files(lake)
    assert publisher.publish().files == 0 and published_files(lake) == files
    for path in lake.rglob("*.parquet"):              # every file has the lake's schema, whatever it holds
        table = path.parts[len(lake.parts)]
        assert pq.read_schema(path).remove_metadata() == SCHEMAS[table]

    record_polls(store, 3, start=T0 + timedelta(hours=3))
    assert publisher.publish().rows == {"polls": 3, "events": 6}
    assert sorted(lake_rows(lake, "events").seq) == list(range(1, 27))
    assert sorted(lake_rows(lake, "polls").poll_id) == list(range(1, 14))


def test_a_file_lost_between_two_runs_is_written_again_and_only_it(store, tmp_path):
    """What a crash between two files of one run leaves: a gap, which the next run fills."""
    lake = tmp_path / "lake"
    record_polls(store, 10)
    publisher = Publisher(str(lake), "alpha", store, batch_rows=5)
    publisher.publish()
    victim = sorted(lake.rglob("events/**/*.parquet"))[1]
    victim.unlink()
    (victim.parent / f".{victim.name}.0123456789ab.tmp").write_bytes(b"PAR1 half a file")   # killed mid-write
    again = publisher.publish()
    assert again.files == 1 and victim.exists()
    assert sorted(lake_rows(lake, "events").seq) == list(range(1, 21))
    assert not list(lake.rglob("*.tmp"))


def test_a_second_database_under_the_same_tracker_id_is_refused(store, tmp_path):
    lake = tmp_path / "lake"
    record_polls(store, 4)
    Publisher(str(lake), "alpha", store).publish()
    other = Store(tmp_path / "other.duckdb")
    record_polls(other, 1)
    result = Publisher(str(lake), "alpha", other).publish()
    other.close()
    assert "another database publishes under this tracker id" in result.error and "\n" not in result.error
    assert sorted(lake_rows(lake, "events").seq) == list(range(1, 9))     # nothing of the other written


def test_an_unwritable_lake_is_one_line_and_the_history_is_untouched(store, tmp_path):
    record_polls(store, 2)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the lake should be")
    result = Publisher(str(blocker / "lake"), "alpha", store).publish()
    assert result.error.startswith(f"cannot publish to lake {blocker / 'lake'}") and "\n" not in result.error
    assert "next run resumes" in result.error
    assert store.last_keys() == {"events": 4, "polls": 2}


def test_bad_lake_urls_and_tracker_ids_are_refused_in_one_line(store):
    with pytest.raises(Exception, match="tracker id 'Alpha!' is not allowed: use lowercase"):
        Publisher("/tmp/lake", "Alpha!", store)
    with pytest.raises(Exception, match=r"^cannot open lake nosuch://bucket/x: .*write a folder path"):
        open_lake("nosuch://user:secret@bucket/x?k=v")


def test_a_failing_read_stops_a_run_and_the_next_one_completes_it(store, tmp_path):
    record_polls(store, 10)

    class Flaky:
        """The store, failing on its third read: a run cut short part-way."""
        calls = 0

        def last_keys(self):
            return store.last_keys()

        def log_rows(self, table, first, last):
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise OSError("database went away")
            return store.log_rows(table, first, last)

    lake = tmp_path / "lake"
    cut = Publisher(str(lake), "alpha", Flaky(), batch_rows=4).publish()
    assert "database went away" in cut.error and cut.files >= 2
    Publisher(str(lake), "alpha", store, batch_rows=4).publish()
    assert sorted(lake_rows(lake, "events").seq) == list(range(1, 21))
    assert sorted(lake_rows(lake, "polls").poll_id) == list(range(1, 11))


# -- the same against an S3-compatible server (moto, as a subprocess on 127.0.0.1) ---------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3_ENV = {"AWS_ACCESS_KEY_ID": "lake-test-key", "AWS_SECRET_ACCESS_KEY": "lake-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **S3_ENV})
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "moto's server exited"
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "moto's server did not answer"
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_env(monkeypatch):
    """pyarrow reads S3 credentials from the usual AWS variables, as in production."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)


def test_an_s3_lake_gets_every_key_once_across_reruns_and_a_lost_object(store, s3_server, s3_env):
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_server}")
    s3.create_bucket(Bucket="lake")
    url = f"s3://lake/history?endpoint_override=127.0.0.1:{s3_server}&scheme=http"
    record_polls(store, 10)
    publisher = Publisher(url, "alpha", store, batch_rows=7)
    assert publisher.publish().rows == {"polls": 10, "events": 20}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
    assert all(k.startswith(("history/events/tracker=alpha/date=", "history/polls/tracker=alpha/date="))
               and k.endswith(".parquet") for k in keys), keys          # no temporary object left behind
    assert publisher.publish().files == 0
    s3.delete_object(Bucket="lake", Key=[k for k in keys if "/events/" in k][1])
    record_polls(store, 2, start=T0 + timedelta(hours=3))
    assert publisher.publish().rows["events"] > 4     # the lost object's rows, and the new ones
    fs, root = open_lake(url)
    seqs = pq.ParquetDataset(f"{root}/events", filesystem=fs, partitioning="hive").read(columns=["seq"]).column(0)
    assert sorted(seqs.to_pylist()) == list(range(1, 25))


def test_an_unreachable_s3_lake_is_one_line_without_credentials(store, s3_env):
    record_polls(store, 1)
    url = f"s3://lake/history?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    result = Publisher(url, "alpha", store).publish()
    assert result.error.startswith("cannot publish to lake s3://lake/history: ") and "\n" not in result.error
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"] not in result.error and "endpoint_override" not in result.error


# -- metrics from many daemons ---------------------------------------------------------------------------------

@pytest.mark.skipif(__import__("shutil").which("promtool") is None, reason="promtool missing (.ci/run installs it)")
def test_the_shipped_prometheus_agent_config_is_valid_and_labels_the_tracker():
    import yaml
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "deploy" / "prometheus-agent.yml"
    done = subprocess.run(["promtool", "check", "config", "--agent", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(path.read_text())
    assert lake_plan.TRACKER_ID.match(config["global"]["external_labels"]["tracker"]) and config["remote_write"]
