"""The daemon: polls on an APScheduler interval, one poll at a time, backs off when the API fails,
serves /metrics, /healthz and /sql on 127.0.0.1, and stops cleanly on SIGTERM/SIGINT. The only apscheduler user."""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from tracker.advisor import Advisor
from tracker.api import QarnotClient, RetryPolicy
from tracker.collect import CostCollector
from tracker.collect_tasks import TaskCollector
from tracker.config import Config, ConfigError, admin_token as load_admin_token
from tracker.lake import LakeError, Publisher, check_tracker_id, default_tracker_id, open_lake
from tracker.logs import event
from tracker.metrics import TrackerMetrics
from tracker.poll import PollResult, Sweeps, poll_once, server_clock, utc_now
from tracker.serve import ThreadedServer
from tracker.store import Store, StoreGone
from tracker.web import build_web_apps


@dataclass
class Health:
    """Healthy while polls succeed. Unhealthy once the API has failed for longer than `max_failure`, when
    no poll has finished for `stall_after` (a poller stuck on a hung API would otherwise look fine), and at
    once while the history cannot be written."""
    max_failure: timedelta
    started: datetime
    stall_after: timedelta | None = None
    last_success: datetime | None = None
    last_finished: datetime | None = None
    failing_since: datetime | None = None
    last_reason: str = ""
    consecutive_failures: int = 0
    store_error: str | None = None     # the history cannot be written: unhealthy at once, data is being lost

    def record(self, result: PollResult, at: datetime) -> None:
        self.last_finished = at
        self.store_error = result.message if result.outcome == "store_failed" else None
        if result.ok:
            self.last_success, self.failing_since, self.consecutive_failures = at, None, 0
        else:
            self.failing_since = self.failing_since or at
            self.consecutive_failures += 1
            self.last_reason = f"{result.outcome}: {result.message}"

    def status(self, now: datetime) -> tuple[bool, str]:
        if self.store_error is not None:
            return False, f"cannot record polls: {self.store_error}"
        if self.failing_since is not None and now - self.failing_since > self.max_failure:
            return False, (f"the API has failed for {(now - self.failing_since).total_seconds():.0f}s "
                           f"({self.consecutive_failures} polls); last: {self.last_reason}")
        quiet = now - (self.last_finished or self.started)
        if self.stall_after is not None and quiet > self.stall_after:
            return False, (f"no poll has finished for {quiet.total_seconds():.0f}s: the API hangs or the poller "
                           "is stuck; check the API's status and this daemon's log")
        if self.last_success is None:
            return True, "starting: no successful poll yet"
        return True, f"last successful poll at {self.last_success.isoformat()}"


def backoff_seconds(failures: int, interval: float, cap: float) -> float:
    """Wait after `failures` consecutive failed polls: the interval, doubling per failure, capped."""
    return min(cap, interval * 2 ** min(max(failures - 1, 0), 32))


def stall_seconds(config: Config) -> float:
    """How long without any finished poll means a stall: the health limit plus the longest legitimate
    quiet spell (a full back-off, jitter, and one poll retrying for an interval then timing out)."""
    poll = config.poll
    return (config.http.health_max_failure_seconds + max(poll.interval_seconds, poll.failure_backoff_max_seconds)
            + poll.jitter_seconds + poll.interval_seconds + config.api.timeout_seconds)


# A poll that outlasts the interval makes APScheduler skip the next run, by design (max_instances=1);
# its per-skip warning would flood the log of a daemon watching a slow API.
logging.getLogger("apscheduler").setLevel(logging.ERROR)


class Daemon:
    def __init__(self, config: Config, token: str, *, client: QarnotClient | None = None,
                 store: Store | None = None, clock: Callable[[], datetime] | None = None,
                 admin_token: str | None = None) -> None:
        self.config = config
        self.metrics = TrackerMetrics(lambda: list(self.store.views.values()), db_size=lambda: self.store.size_bytes(),
                                      recommendations=lambda: self.advisor.latest,
                                      pool_labels=config.metrics.pool_labels,
                                      api_bytes=lambda: self.client.bytes_received)
        # The client first: a missing token is reported before a database file gets created.
        self.client = client or QarnotClient(config.api.url, token, timeout=config.api.timeout_seconds,
                                             page_size=config.api.page_size, on_retry=self.metrics.count_retry,
                                             retry=RetryPolicy(give_up_after_seconds=config.poll.interval_seconds),
                                             select_fields=config.poll.select_fields)
        for port in (config.http.port, config.http.admin_port):
            _check_port_free(config.http.host, port)   # also before creating a database file
        lake = _open_lake(config)                           # and so is a bad lake URL
        self.store = store or Store(config.store.path, memory_limit=config.sql.memory_limit, threads=config.sql.threads)
        if self.store.replay_skipped:
            event(logging.WARNING, f"{self.store.replay_skipped} unreadable event rows skipped while rebuilding "
                                   "the pools' current views", db=str(self.store.path))
        self.admin_token = admin_token or load_admin_token(config, token, create=True)
        self.sql_slots = threading.BoundedSemaphore(config.sql.concurrency)
        self.fatal: str | None = None      # why the daemon stopped by itself (exit code 2)
        self.advisor = Advisor(self.store, config.advisor, self.client, on_decision=self.metrics.count_commit,
                               account=lambda: self.costs.account)
        self._advise_lock = threading.Lock()
        self._poll_idle = threading.Event()      # clear while a poll runs: the collectors hold their requests
        self._poll_idle.set()
        self.costs = CostCollector(self.client, self.store, config.costs, self._poll_idle)
        self.metrics.account = lambda: self.costs.account
        self.tasks = TaskCollector(self.client, self.store, config.tasks, self._poll_idle)
        self.clock = clock or (server_clock(self.client) if config.api.clock == "server" else utc_now)
        self.health = Health(timedelta(seconds=config.http.health_max_failure_seconds), started=utc_now(),
                             stall_after=timedelta(seconds=stall_seconds(config)))
        self.stopping = threading.Event()
        self._backoff_until: datetime | None = None
        self.sweeps = Sweeps(timedelta(seconds=config.poll.full_sweep_seconds))
        self._search_refusal_told = False
        self._poll_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self.lake = self._lake_publisher(config, lake)
        self.lake_status: dict = {}          # the last publish run, for /healthz (publishing never affects health)
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        http = config.http
        public, admin = build_web_apps(self)
        limits = dict(header_timeout=http.request_timeout_seconds, limit_concurrency=http.max_connections)
        self.web = ThreadedServer(public, http.host, http.port, **limits)
        self.admin_web = None if admin is None else ThreadedServer(admin, http.host, http.admin_port, **limits)

    # -- one scheduled run ------------------------------------------------------------------------
    def poll(self) -> PollResult | None:
        """Poll unless backing off or stopping; never raises (a failed poll is recorded and logged)."""
        now = utc_now()
        if self.stopping.is_set() or (self._backoff_until and now < self._backoff_until):
            return None
        selection = self.config.select
        with self._poll_lock:
            self._poll_idle.clear()
            try:
                result = poll_once(self.client, self.store, tags=selection.tags, clock=self.clock,
                                   keep=lambda s: all((k, v) in s.labels for k, v in selection.labels.items()),
                                   live_only=self.sweeps.live_only(self.clock()))
                self.sweeps.record(result, self.clock())
            except StoreGone as exc:
                self.fatal = str(exc)
                event(logging.ERROR, self.fatal)
                self.stopping.set()
                return None
            except Exception as exc:  # noqa: BLE001 - the daemon outlives any one poll
                if not self.stopping.is_set():
                    event(logging.ERROR, f"poll crashed: {exc}", error=type(exc).__name__)
                return None
            finally:
                self._poll_idle.set()
        if self.stopping.is_set():
            return result               # abandoned by shutdown: not the API's fault, not worth a line
        self.health.record(result, utc_now())
        self.metrics.observe_poll(result, time.time())
        if self.client.search_refused and not self._search_refusal_told:
            self._search_refusal_told = True
            event(logging.WARNING, f"live polls page full documents from now on: {self.client.search_refused}")
        if result.ok:
            self._backoff_until = None
            event(logging.INFO, "poll ok", poll=result.poll_id, pools=result.pools_seen,
                  events=result.events_written, seconds=round(result.duration_seconds, 3),
                  listed="all" if result.complete else "live")
        else:
            delay = max(backoff_seconds(self.health.consecutive_failures, self.config.poll.interval_seconds,
                                        self.config.poll.failure_backoff_max_seconds), result.retry_after or 0.0)
            self._backoff_until = utc_now() + timedelta(seconds=delay)
            event(logging.ERROR, f"poll failed: {result.message}", poll=result.poll_id, reason=result.outcome,
                  retry_in_seconds=round(delay))
        return result

    def advise(self) -> None:
        """One advisor round; like a poll, it never raises and is logged in one line."""
        if self.stopping.is_set():
            return
        with self._advise_lock:
            try:
                results = self.advisor.run(self.clock())
            except Exception as exc:  # noqa: BLE001 - the daemon outlives any one round
                if not self.stopping.is_set():
                    event(logging.ERROR, f"advisor round failed: {exc}", error=type(exc).__name__)
                return
        decisions = [d.code for _, _, d in results if d is not None]
        event(logging.INFO, "advisor round", recommendations=len(results),
              commits=sum(code in ("ok", "limited") for code in decisions),
              refusals=sum(code not in ("ok", "limited") for code in decisions))

    def collect(self, what: str) -> None:
        """One collector run ("pools", "account" or "tasks"), beside the polls; never raises, logged in one line."""
        if self.stopping.is_set():
            return
        try:
            last = self.store.last_recorded     # before this process's first poll the API's clock is unknown:
            now = max(self.clock(), last) if last else self.clock()   # never record behind the history
            run = {"pools": self.costs.collect_pools, "account": self.costs.collect_account, "tasks": self.tasks.collect}
            result = run[what](now)
        except Exception as exc:  # noqa: BLE001 - the daemon outlives any one run
            if not self.stopping.is_set():
                event(logging.ERROR, f"{what} figures not collected: {exc}", error=type(exc).__name__)
            return
        self.metrics.observe_collection(what, result)
        if result.fetched or result.failed:
            event(logging.INFO, f"{what} figures collected", fetched=result.fetched, failed=result.failed,
                  events=result.events)

    def _lake_publisher(self, config: Config, opened) -> Publisher | None:
        if opened is None:
            return None
        # Reads wait for a running poll to finish: the poll owns the database first.
        source = _YieldingSource(self.store, self._poll_idle, config.poll.interval_seconds)
        return Publisher(config.lake.url, _tracker_id(config), source, batch_rows=config.lake.batch_rows, opened=opened)

    def publish(self) -> None:
        """One lake publish run beside the polls; a failure is one log line, a metric and a status, and
        never touches polling or the database."""
        if self.stopping.is_set() or self.lake is None:
            return
        with self._publish_lock:
            result = self.lake.publish(stop=self.stopping)
        if self.stopping.is_set():
            return
        self.metrics.observe_publish(result, time.time())
        self.lake_status = {"tracker": self.lake.tracker, "published_through": result.published_through,
                            "unpublished": result.unpublished, "error": result.error, "at": utc_now().isoformat()}
        if result.error:
            event(logging.ERROR, f"lake publish failed: {result.error}", tracker=self.lake.tracker)
        elif result.files or result.overlaps:
            event(logging.WARNING if result.overlaps else logging.INFO, "lake published", tracker=self.lake.tracker,
                  files=result.files, **{f"{t}_rows": n for t, n in result.rows.items()},
                  **({"overlapping_files": result.overlaps} if result.overlaps else {}))

    # -- lifetime ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.web.start()
        if self.admin_web is not None:
            self.admin_web.start()
        self.scheduler.add_job(self.poll, "interval", seconds=self.config.poll.interval_seconds,
                               jitter=self.config.poll.jitter_seconds or None, max_instances=1, coalesce=True,
                               next_run_time=datetime.now(timezone.utc), misfire_grace_time=None)
        costs = self.config.costs
        if costs.enabled:   # each its own job: a slow figures endpoint never delays a poll
            self.scheduler.add_job(self.collect, "interval", args=["pools"], seconds=costs.run_every_seconds,
                                   next_run_time=datetime.now(timezone.utc) + timedelta(seconds=2),
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
            self.scheduler.add_job(self.collect, "interval", args=["account"], seconds=costs.account_interval_seconds,
                                   next_run_time=datetime.now(timezone.utc) + timedelta(seconds=1),
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.config.tasks.enabled:
            self.scheduler.add_job(self.collect, "interval", args=["tasks"], seconds=self.config.tasks.interval_seconds,
                                   next_run_time=datetime.now(timezone.utc) + timedelta(seconds=3),
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.config.advisor.enabled:
            self.scheduler.add_job(self.advise, "interval", seconds=self.config.advisor.schedule_seconds,
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.lake is not None:
            self.scheduler.add_job(self.publish, "interval", seconds=self.config.lake.interval_seconds,
                                   next_run_time=datetime.now(timezone.utc) + timedelta(seconds=1),
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        self.scheduler.start()
        event(logging.INFO, "pool-tracker running", db=str(self.store.path), api=self.config.api.url,
              http=self.web.url, interval_seconds=self.config.poll.interval_seconds,
              **({"admin": self.admin_web.url} if self.admin_web else {}))

    def run_until_signalled(self, on_started: Callable[[], None] = lambda: None) -> str | None:
        """Run until SIGTERM/SIGINT; returns why the daemon stopped by itself, if it did (exit code 2)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.start()
        on_started()
        self.stopping.wait()
        self.stop()
        return self.fatal

    def stop(self, grace_seconds: float = 3.0) -> None:
        """Stop within seconds: a poll or advisor round writing to the database finishes first (the store
        serialises writes and close); one still waiting on a slow API is abandoned, and writes nothing."""
        self.stopping.set()
        self.scheduler.shutdown(wait=False)
        self.client.close()
        locks = (self._poll_lock, self._advise_lock, self._publish_lock)
        held = [lock for lock in locks if lock.acquire(timeout=grace_seconds)]
        try:
            self.store.close()
        except Exception as exc:  # noqa: BLE001 - committed polls are durable; never hang or crash on exit
            event(logging.WARNING, f"database still busy at exit, left to recover on next start: {exc}")
        finally:
            for lock in held:
                lock.release()
        self.web.stop()
        if self.admin_web is not None:
            self.admin_web.stop()
        event(logging.INFO, "pool-tracker stopped", **({"abandoned": len(locks) - len(held)} if len(held) < len(locks) else {}))


def _tracker_id(config: Config) -> str:
    return config.lake.tracker_id or default_tracker_id(config.store.path)


def _open_lake(config: Config):
    """The lake's file system, checked at start so a bad URL or tracker id is a one-line error (exit 2)."""
    if config.lake.url is None:
        return None
    try:
        check_tracker_id(_tracker_id(config))
        return open_lake(config.lake.url)
    except LakeError as exc:
        raise ConfigError(f"config error: lake: {exc}") from None


class _YieldingSource:
    """The daemon's store as the publisher's source, reading only while no poll runs."""

    def __init__(self, store: Store, poll_idle: threading.Event, wait_seconds: float) -> None:
        self.store, self.poll_idle, self.wait_seconds = store, poll_idle, wait_seconds

    def last_keys(self) -> dict[str, int]:
        self.poll_idle.wait(timeout=self.wait_seconds)
        return self.store.last_keys()

    def log_rows(self, table: str, first: int, last: int):
        self.poll_idle.wait(timeout=self.wait_seconds)
        return self.store.log_rows(table, first, last)


def _check_port_free(host: str, port: int | None) -> None:
    """Say which setting to change before uvicorn would log its own multi-line complaint."""
    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}): another pool-tracker running? "
                          "Choose another port with --metrics-port or [http] port") from None


def exit_now(code: int = 0) -> None:
    """Leave the process once the daemon has stopped cleanly. A worker thread abandoned on a hung API
    would otherwise hold up interpreter shutdown (concurrent.futures joins its threads) for a timeout."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
