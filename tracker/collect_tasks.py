"""The tasks collector: real arrivals, waits and run times of the live pools' tasks, beside the state poll.

Cost, per run: the tasks not ended yet of up to `pools_per_request` live pools per request (`PoolUuid In
[...]` and `State NotIn [Success, Failure, Cancelled]`, paginated), so 1,000 live pools are 10 requests
however many tasks they finished long ago; then each task seen open before and absent now (it has
ended) is read once (`GET /tasks/{uuid}`), at most `max_fetches_per_run` per run. Every
`sweep_interval_seconds` the listing also takes ended tasks, catching tasks that started and ended
between two runs. Events (`tracker.tasks`) are appended in the collector's own transaction, only for what
changed; a task the store already holds is recognised after a restart. A document that does not parse
is quarantined (`task_unreadable`, one line naming the field) and costs no other task its events.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

from tracker import tasks as task_rules
from tracker.api import ApiError, PoolNotFound, QarnotClient
from tracker.collect import CollectResult, poll_gate
from tracker.events import Event
from tracker.logs import event
from tracker.parse import BadDocument
from tracker.snapshot import FINISHED
from tracker.store import Store


class TaskCollector:
    def __init__(self, client: QarnotClient, store: Store, config, poll_idle: threading.Event | None = None) -> None:
        self.client, self.store, self.config = client, store, config
        self.poll_idle = poll_gate(poll_idle)
        # task -> (pool, latest phase recorded, when), for tasks not ended: memory grows with the work in flight,
        # not with history (an ended task listed again by a sweep is looked up in the store)
        self.known: dict[str, tuple[str, str, datetime]] = store.task_phases()
        self.unreadable: dict[str, str] = {}     # task -> the reason already recorded
        self.last_sweep: datetime | None = None

    def collect(self, now: datetime) -> CollectResult:
        live = sorted(v.uuid for v in list(self.store.views.values())
                      if v.state is not None and v.state not in FINISHED)
        sweep = self.last_sweep is None or (now - self.last_sweep).total_seconds() >= self.config.sweep_interval_seconds
        docs, failed = [], 0
        step = self.config.pools_per_request
        for i in range(0, len(live), step):
            self.poll_idle.wait(timeout=60)       # a poll is running: let it have the API
            try:
                docs += self.client.list_tasks(task_rules.live_filter(live[i:i + step], open_only=not sweep))
            except ApiError as exc:
                failed += 1
                sweep = False                      # a sweep is complete or not at all
                event(logging.WARNING, f"tasks not listed: {exc}", pools=len(live[i:i + step]))
        listed = {doc.get("uuid") for doc in docs if isinstance(doc, dict)}
        if not failed:    # only a complete listing tells which open tasks have ended
            docs += self._ended_since(listed)
        events = self._events(docs, now)
        self.store.append_events(events)
        if sweep:
            self.last_sweep = now
        self._forget()
        return CollectResult(len(docs), failed, len(events))

    def _ended_since(self, listed: set) -> list[dict]:
        """Read once each task known open but no longer listed (it has ended, or its pool has)."""
        gone = [uuid for uuid, (_, phase, _) in self.known.items()
                if phase != "task_finished" and uuid not in listed][:self.config.max_fetches_per_run]
        out = []
        for uuid in gone:
            try:
                out.append(self.client.get_task_document(uuid))
            except PoolNotFound:
                event(logging.INFO, "task deleted before its end was seen", task=uuid)
                del self.known[uuid]
            except ApiError as exc:
                event(logging.WARNING, f"task not read: {exc}", task=uuid)
        return out

    def _events(self, docs: list, now: datetime) -> list[Event]:
        unknown = [d["uuid"] for d in docs if isinstance(d, dict) and isinstance(d.get("uuid"), str)
                   and d["uuid"] not in self.known]
        if unknown:
            self.known.update(self.store.task_phases(unknown))   # recorded before a restart: not again
        out: list[Event] = []
        for doc in docs:
            try:
                task = task_rules.parse_task(doc)
            except BadDocument as exc:
                out += self._quarantine(doc, str(exc)[:300], now)
                continue
            self.unreadable.pop(task.uuid, None)
            _, recorded, _ = self.known.get(task.uuid, (None, None, None))
            new = task_rules.task_events(task, recorded, now)
            if new:
                self.known[task.uuid] = (task.pool, new[-1].type, now)
                out += new
        return out

    def _quarantine(self, doc: object, reason: str, now: datetime) -> list[Event]:
        uuid = doc.get("uuid") if isinstance(doc, dict) else None
        uuid = uuid if isinstance(uuid, str) and 0 < len(uuid) <= 200 else None
        pool = doc.get("poolUuid") if isinstance(doc, dict) else None
        if uuid is not None and self.unreadable.get(uuid) == reason:
            return []
        if uuid is not None:
            self.unreadable[uuid] = reason
        event(logging.WARNING, f"task document unreadable: {reason}", task=uuid)
        return [Event("task_unreadable", pool if isinstance(pool, str) and len(pool) <= 200 else None, now, now,
                      payload={"task": uuid, "reason": reason})]

    def _forget(self) -> None:
        """Ended tasks leave memory once recorded (the store knows them)."""
        for uuid in [u for u, (_, phase, _) in self.known.items() if phase == "task_finished"]:
            del self.known[uuid]
        if len(self.unreadable) > 10_000:
            self.unreadable.clear()
