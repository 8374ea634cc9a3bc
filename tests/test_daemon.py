"""The daemon's own logic: health, back-off, redacted one-line logs, and back-off against a revoked token
(in-process, real emulator and real DuckDB file). The subprocess runs are in test_daemon_e2e.py."""
import io
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from tracker import logs
from tracker.config import load_config
from tracker.daemon import Daemon, Health, backoff_seconds, stall_seconds
from tracker.emulator import Emulator, Faults
from tracker.poll import PollResult

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
OK = PollResult(1, "ok", "", 3, 0.1)
DOWN = PollResult(2, "unavailable", "HTTP 503 try later", 0, 0.1)


def test_health_turns_unhealthy_only_after_failing_longer_than_the_limit_and_recovers():
    health = Health(timedelta(seconds=60), started=T0)
    assert health.status(T0) == (True, "starting: no successful poll yet")
    health.record(OK, T0)
    health.record(DOWN, T0 + timedelta(seconds=10))
    assert health.status(T0 + timedelta(seconds=70))[0] is True
    healthy, reason = health.status(T0 + timedelta(seconds=71))
    assert not healthy and "failed for 61s" in reason and "HTTP 503 try later" in reason
    health.record(OK, T0 + timedelta(seconds=80))
    assert health.status(T0 + timedelta(seconds=80))[0] is True


def test_health_notices_a_poller_that_stopped_finishing_polls():
    health = Health(timedelta(seconds=60), started=T0, stall_after=timedelta(seconds=200))
    assert health.status(T0 + timedelta(seconds=200))[0] is True          # no first poll yet, still in time
    healthy, reason = health.status(T0 + timedelta(seconds=201))
    assert not healthy and "no poll has finished for 201s" in reason
    health.record(OK, T0 + timedelta(seconds=300))
    assert health.status(T0 + timedelta(seconds=450))[0] is True


def test_stall_limit_leaves_room_for_a_full_back_off_and_a_slow_poll():
    config, _ = load_config(env={})
    assert stall_seconds(config) > config.http.health_max_failure_seconds + config.poll.failure_backoff_max_seconds


@given(st.integers(1, 200), st.floats(1, 3600), st.floats(1, 3600))
def test_backoff_starts_at_the_interval_doubles_and_never_exceeds_the_cap(failures, interval, cap):
    delay = backoff_seconds(failures, interval, cap)
    assert delay <= cap and delay == backoff_seconds(failures, interval, cap)
    assert backoff_seconds(failures + 1, interval, cap) >= delay
    assert backoff_seconds(1, interval, cap) == min(interval, cap)


@pytest.fixture
def captured():
    """The real handler from logs.setup(), writing to a buffer; returns a function giving the lines."""
    def install(fmt, secret):
        handler = logs.setup(fmt, "INFO", secret)
        handler.setStream(buffer)
        return lambda: buffer.getvalue().splitlines()
    buffer = io.StringIO()
    yield install
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "pool_tracker", 0)]


def test_the_token_never_reaches_a_log_line_from_us_or_a_library(captured):
    lines = captured("text", "s3cr3t-T0KEN")
    logs.event(logging.ERROR, "auth failed with s3cr3t-T0KEN", header="Authorization: s3cr3t-T0KEN", n=3)
    logging.getLogger("httpx").warning("request with %s", "s3cr3t-T0KEN")
    try:
        raise RuntimeError("boom s3cr3t-T0KEN\nsecond line")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("app crashed")
    out = lines()
    assert len(out) == 3 and not any("s3cr3t-T0KEN" in line for line in out)
    assert 'header="Authorization: <redacted>"' in out[0] and "n=3" in out[0]
    assert "source=uvicorn.error" in out[2] and 'error="RuntimeError: boom <redacted>"' in out[2]


def test_json_logs_are_one_object_per_line_with_the_poll_fields(captured):
    lines = captured("json", "tok")
    logs.event(logging.INFO, "poll ok", poll=7, pools=12, events=30, seconds=0.25, at=T0)
    logging.getLogger("apscheduler").info("below WARNING: dropped")
    (line,) = lines()
    record = json.loads(line)
    assert record["message"] == "poll ok" and record["level"] == "info"
    assert (record["pools"], record["events"], record["seconds"], record["at"]) == (12, 30, 0.25, str(T0))


def test_a_revoked_token_backs_off_instead_of_failing_every_interval(tmp_path):
    with Emulator.running(pools=5, seed=2, speed=60.0, token="good-token",
                          faults=Faults(token_invalid_after=0)) as emu:
        config, token = load_config(env={"QARNOT_CLIENT_TOKEN": emu.token}, overrides={
            "api.url": emu.url, "store.path": str(tmp_path / "r.duckdb"), "http.port": 0, "advisor.enabled": False,
            "poll.interval_seconds": 1, "poll.jitter_seconds": 0, "poll.failure_backoff_max_seconds": 4,
            "http.health_max_failure_seconds": 2})
        daemon = Daemon(config, token)
        daemon.start()
        deadline = time.monotonic() + 60
        while len(daemon.store.polls()) < 4:          # runs are scheduled every second ...
            assert time.monotonic() < deadline, "fewer than four polls in a minute"
            time.sleep(0.1)
        healthy, reason = daemon.health.status(datetime.now(timezone.utc))
        polls = daemon.store.polls().head(4)
        daemon.stop()
    assert set(polls["outcome"]) == {"unauthorized"}
    gaps = polls["started_at"].diff().dt.total_seconds().dropna().tolist()
    # ... but each failure waits out its back-off (1, 2, 4 s) before the next try.
    assert all(gap >= backoff_seconds(n, 1, 4) - 0.1 for n, gap in enumerate(gaps, start=1)), gaps
    assert gaps[-1] > gaps[0]
    assert not healthy and "unauthorized" in reason and "good-token" not in reason


def test_the_daemon_lists_every_pool_first_and_then_once_per_sweep_interval(tmp_path):
    """In between, its polls list live pools only; the metrics count the full listings and API bytes."""
    clock = type("Clock", (), {"now": 1_800_000_000.0, "__call__": lambda self: self.now})()
    with Emulator.running(pools=6, seed=2, token="sweep-token", clock=clock) as emu:
        config, token = load_config(env={"QARNOT_CLIENT_TOKEN": emu.token}, overrides={
            "api.url": emu.url, "api.clock": "server", "store.path": str(tmp_path / "s.duckdb"), "http.port": 0,
            "advisor.enabled": False, "poll.full_sweep_seconds": 600})
        daemon = Daemon(config, token)
        complete = []
        for _ in range(13):
            complete.append(daemon.poll().complete)
            clock.now += 120
        exposition = daemon.metrics.exposition()[0].decode()
        daemon.store.close()
    # every 600 s of API time as last seen when a poll starts (the emulator's clock moves between polls)
    assert complete == [True, *[False] * 5, True, *[False] * 5, True]
    assert "pool_tracker_full_listings_total 3.0" in exposition
    received = next(line for line in exposition.splitlines() if line.startswith("pool_tracker_api_received_bytes_total"))
    assert float(received.split()[1]) > 10_000
