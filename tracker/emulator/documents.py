"""Pool and task documents exactly as the Qarnot API spells them (field names, dates, timespans)."""
from __future__ import annotations

from datetime import datetime, timezone

from tracker.emulator.cluster import EmulatedPool
from tracker.parse import format_timespan

INSTANCE_INFO_LIMIT = 8  # per-instance status entries listed per pool, to keep documents small


def api_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_document(pool: EmulatedPool, now: float) -> dict:
    model, cores = pool.model, pool.cores_per_slot
    ready, busy = model.ready, model.busy
    usage = busy / ready if ready else 0.0
    instances = [
        {"instanceId": i, "phase": "execution" if i < busy else "idle", "cpuUsage": 97.5 if i < busy else 1.5,
         "memoryUsage": 0.4 if i < busy else 0.05, "executionTimeSec": 0, "cpuModel": "AMD EPYC 7763",
         "coreCount": cores}
        for i in range(min(ready, INSTANCE_INFO_LIMIT))]
    doc = {
        "uuid": pool.uuid,
        "name": pool.name,
        "shortname": pool.shortname or pool.uuid,
        "profile": pool.profile,
        "projectUuid": None,
        "tags": pool.tags,
        "labels": pool.labels,
        "constants": [],
        "constraints": [],
        "hardwareConstraints": [],
        "schedulingType": "Flex",
        "instanceCount": ready + model.starting,
        "runningCoreCount": ready * cores,
        "runningInstanceCount": ready,
        "totalSlotCapacity": pool.settings.max_total_slots,
        "poolUsage": round(usage, 4),
        "queuedOrRunningTaskInstancesCount": busy + model.queued,
        "state": pool.state,
        "previousState": pool.previous_state,
        "stateTransitionTime": api_time(pool.transition_time),
        "previousStateTransitionTime": api_time(pool.previous_transition_time),
        "lastModified": api_time(pool.last_modified),
        "creationDate": api_time(pool.created),
        "endDate": api_time(pool.end_date),
        "errors": pool.errors,
        "executionTime": format_timespan(pool.execution_seconds()),
        "elasticProperty": pool.settings.to_api(),
        "autoDeleteOnCompletion": False,
        "completionTimeToLive": "00:00:00",
        "taskDefaultWaitForPoolResourcesSynchronization": False,
        "status": {
            "executionTimeSec": round(pool.execution_seconds()),
            "wallTimeSec": round(max(0.0, now - pool.created)),
            "runningInstancesInfo": {
                "perRunningInstanceInfo": instances,
                "averageCpuUsage": round(usage * 97.5 + (1 - usage) * 1.5, 2) if ready else 0.0,
                "runningCoreCountByCpuModel": [{"model": "AMD EPYC 7763", "core": ready * cores}] if ready else [],
                "timestamp": api_time(now),
            },
        },
    }
    for key, value in pool.extra.items():
        doc.setdefault(key, value)
    return doc
