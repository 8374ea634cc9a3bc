"""Pool and task documents exactly as the Qarnot API spells them (field names, dates, timespans).

Sizes, as the API reports them (the model counts slots; `tracker.emulator.nodes` maps them to nodes):
- `runningInstanceCount`: running nodes; `instanceCount`: nodes running or starting;
  `runningCoreCount`: running nodes x cores per node;
- `totalSlotCapacity`: the slots of a static pool, the maximum slots of an elastic one, the largest
  slot count any policy allows for a scaling pool;
- `poolUsage`: task instances running (one per slot) / `totalSlotCapacity`;
- `executionTime` and `status.executionTimeSec`: node-seconds (the integral of running instances) so
  far, an unverified reading of Qarnot's own figure (see the README); per-CPU-model `timeGhz` is that
  times the clock, per-instance `executionTimeSec` the node's running seconds.
- `scaling`: the scaling document with the `activePolicyName` the model has now; null on legacy pools.
"""
from __future__ import annotations

from datetime import datetime, timezone

from tracker.emulator.cluster import EmulatedPool
from tracker.emulator.sizing import served_scaling
from tracker.emulator.tasks import TERMINAL, EmulatedTask
from tracker.parse import format_timespan

INSTANCE_INFO_LIMIT = 8  # per-instance status entries listed per pool, to keep documents small
CPU_MODELS = {  # profile -> (cpu model, GHz, memory MB per node)
    "docker-batch": ("AMD EPYC 7763", 2.45, 16_384),
    "docker-batch-large": ("AMD EPYC 9654", 2.4, 65_536),
    "docker-nvidia": ("Intel Xeon Gold 6338", 2.0, 32_768),
}
BUSY_CPU, IDLE_CPU = 97.5, 1.5  # percent CPU of a busy and of an idle slot


def api_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_document(pool: EmulatedPool, now: float) -> dict:
    model, nodes = pool.model, pool.nodes
    capacity = pool.slot_capacity
    doc = {
        "uuid": pool.uuid,
        "name": pool.name,
        "shortname": pool.shortname or pool.uuid,
        "profile": pool.profile,
        "projectUuid": pool.project_uuid,
        "tags": pool.tags,
        "labels": pool.labels,
        "constants": [],
        "constraints": [],
        "hardwareConstraints": [],
        "schedulingType": pool.scheduling_type,
        "multiSlotsSettings": {"slotsPerNode": pool.slots_per_node},
        "instanceCount": nodes.nodes_for(model.ready + model.starting),
        "runningCoreCount": pool.running_cores,
        "runningInstanceCount": pool.running_instances,
        "totalSlotCapacity": capacity,
        "poolUsage": round(model.busy / capacity, 4) if capacity else 0.0,
        "queuedOrRunningTaskInstancesCount": model.busy + model.queued,
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
        "scaling": None if pool.scaling is None else served_scaling(pool.scaling, model.active_policy_name),
        "autoDeleteOnCompletion": False,
        "completionTimeToLive": "00:00:00",
        "taskDefaultWaitForPoolResourcesSynchronization": False,
        "status": pool_status(pool, now),
    }
    for key, value in pool.extra.items():
        doc.setdefault(key, value)
    return doc


def selected(doc: dict, fields: object) -> dict:
    """`doc` cut to the top-level `fields` of a search's `select`, named in any case ("State", "state");
    a field no pool document has is refused (ValueError: the API's 400) rather than silently dropped."""
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ValueError(f"select must be a list of field names, got {fields!r}")
    by_lower = {key.lower(): key for key in doc}
    unknown = [f for f in fields if f.lower() not in by_lower]
    if unknown:
        raise ValueError(f"select names unknown pool fields: {', '.join(unknown)}")
    return {by_lower[f.lower()]: doc[by_lower[f.lower()]] for f in fields}


def pool_status(pool: EmulatedPool, now: float) -> dict:
    """The `status` object: timings, per-CPU-model totals and what each running node is doing."""
    model, cores = pool.model, pool.cores_per_node
    cpu, ghz, memory_mb = CPU_MODELS.get(pool.profile, CPU_MODELS["docker-batch"])
    executed, wall = pool.execution_seconds(), max(0.0, now - pool.created)
    per_node = [node_info(pool, i, started, now) for i, started in
                enumerate(pool.nodes.started[:INSTANCE_INFO_LIMIT])]
    running_cores = pool.running_cores
    slots = pool.running_instances * pool.slots_per_node
    average_cpu = (model.busy * BUSY_CPU + (slots - model.busy) * IDLE_CPU) / slots if slots else 0.0
    return {
        "downloadProgress": 100.0, "executionProgress": 0.0, "uploadProgress": 0.0,
        "instanceCount": pool.running_instances,
        "downloadTime": "00:00:00", "downloadTimeSec": 0.0,
        "environmentTime": "00:00:00", "environmentTimeSec": 0.0,
        "executionTime": format_timespan(round(executed)), "executionTimeSec": float(round(executed)),
        "uploadTime": "00:00:00", "uploadTimeSec": 0.0,
        "wallTime": format_timespan(round(wall)), "wallTimeSec": float(round(wall)),
        "succeededRange": "", "executedRange": "", "failedRange": "",
        "lastUpdateTimestamp": api_time(now),
        "executionTimeByCpuModel": [{"model": cpu, "time": round(executed), "core": cores}] if executed else [],
        "executionTimeGhzByCpuModel": [{"model": cpu, "timeGhz": round(executed * ghz, 3), "clockRatio": 1.0,
                                        "core": cores}] if executed else [],
        "runningInstancesInfo": {
            "perRunningInstanceInfo": per_node,
            "timestamp": api_time(now),
            "averageFrequencyGHz": ghz if running_cores else 0.0,
            "maxFrequencyGHz": ghz if running_cores else 0.0,
            "minFrequencyGHz": ghz if running_cores else 0.0,
            "averageMaxFrequencyGHz": ghz if running_cores else 0.0,
            "averageCpuUsage": round(average_cpu, 2),
            "clusterPowerIndicator": 1.0 if running_cores else 0.0,
            "averageMemoryUsage": round(average_cpu / 250, 4),
            "averageNetworkInKbps": 0.0, "averageNetworkOutKbps": 0.0,
            "totalNetworkInKbps": 0.0, "totalNetworkOutKbps": 0.0,
            "snapshotResults": [],
            "runningCoreCountByCpuModel": [{"model": cpu, "core": running_cores}] if running_cores else [],
        },
    }


def node_info(pool: EmulatedPool, index: int, started: float, now: float) -> dict:
    """One running node: its busy slots are the pool's busy slots packed onto the first nodes."""
    per_node, cores = pool.slots_per_node, pool.cores_per_node
    cpu, ghz, memory_mb = CPU_MODELS.get(pool.profile, CPU_MODELS["docker-batch"])
    busy = min(per_node, max(0, pool.model.busy - index * per_node))
    usage = (busy * BUSY_CPU + (per_node - busy) * IDLE_CPU) / per_node
    running = max(0.0, now - started)
    return {
        "instanceId": index, "phase": "execution" if busy else "idle",
        "cpuUsage": round(usage, 2), "memoryUsage": round(usage / 250, 4),
        "maxMemoryMB": memory_mb, "currentMemoryMB": round(memory_mb * usage / 250),
        "maxFrequencyGHz": ghz, "currentFrequencyGHz": ghz,
        "networkInKbps": 0.0, "networkOutKbps": 0.0, "progress": 0.0,
        "executionTimeSec": round(running), "executionTimeGHz": round(running * ghz, 3),
        "cpuModel": cpu, "coreCount": cores, "executionAttemptCount": 1,
        "activeForwards": [], "vpnConnections": [],
    }


TASK_INFO_LIMIT = 8     # running instances listed per task in `status.runningInstancesInfo`
COMPLETED_LIMIT = 64    # ended instances listed per task in `completedInstances`
SUMMARY_LEAVES_OUT = ("status", "completedInstances", "constants")   # what a task summary lacks


def api_time_precise(seconds: float | None) -> str | None:
    """A date to the microsecond (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, which the SDK parses): task timings are
    finer than a second."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def task_document(task: EmulatedTask, now: float, summary: bool = False) -> dict:
    """A task as the API sends it; `wallTime` runs from its first instance's start to its end (or now),
    `executionTime` sums its instances' running seconds."""
    (since, state), previous = task.state_at(now)
    end = task.end if state in TERMINAL else None
    first_start = task.starts[0][0] if task.starts else None
    wall = 0.0 if first_start is None else max(0.0, (end if end is not None else now) - first_start)
    executed = task.instance_seconds(now)
    running = _running(task, now)
    cpu, ghz, _ = CPU_MODELS.get(task.profile, CPU_MODELS["docker-batch"])
    doc = {
        "uuid": task.uuid, "name": task.name, "shortname": task.uuid, "profile": task.profile,
        "poolUuid": task.pool, "jobUuid": None, "tags": task.extra.get("tags") or [],
        "labels": task.extra.get("labels") or {}, "constants": task.extra.get("constants") or [], "errors": [],
        "instanceCount": task.instances, "runningInstanceCount": sum(n for _, n in running),
        "runningCoreCount": 0, "state": state, "stateTransitionTime": api_time_precise(since),
        "previousState": previous[1] if previous else None,
        "previousStateTransitionTime": api_time_precise(previous[0]) if previous else None,
        "lastModified": api_time_precise(since), "creationDate": api_time_precise(task.created),
        "endDate": api_time_precise(end), "executionTime": format_timespan(executed),
        "wallTime": format_timespan(wall), "resultsCount": 0, "autoDeleteOnCompletion": False,
        "completionTimeToLive": "00:00:00", "hardwareConstraints": [], "forcedNetworkRules": [],
        "status": task_status(task, now, executed, wall, running, cpu, ghz),
        "completedInstances": [
            {"instanceId": i, "state": "Success", "wallTimeSec": task.duration, "execTimeSec": task.duration,
             "execTimeSecGHz": round(task.duration * ghz, 3), "peakMemoryMB": 0, "averageGHz": ghz,
             "results": [], "executionAttemptCount": 1}
            for i, start in _instances(task) if start + task.duration <= now][:COMPLETED_LIMIT],
    }
    for key, value in task.extra.items():
        doc.setdefault(key, value)
    if summary:
        for key in SUMMARY_LEAVES_OUT:
            doc.pop(key, None)
    return doc


def task_status(task: EmulatedTask, now: float, executed: float, wall: float, running, cpu: str, ghz: float) -> dict:
    finished = sum(n for at, n in task.starts if at + task.duration <= now)
    shown = [(i, start) for i, start in _instances(task) if start + task.duration > now >= start][:TASK_INFO_LIMIT]
    return {
        "downloadProgress": 100.0, "executionProgress": round(100.0 * finished / task.instances, 2),
        "uploadProgress": 0.0, "instanceCount": sum(n for _, n in running),
        "downloadTime": "00:00:00", "downloadTimeSec": 0.0, "environmentTime": "00:00:00", "environmentTimeSec": 0.0,
        "executionTime": format_timespan(executed), "executionTimeSec": round(executed, 6),
        "uploadTime": "00:00:00", "uploadTimeSec": 0.0,
        "wallTime": format_timespan(wall), "wallTimeSec": round(wall, 6),
        "succeededRange": _range(finished), "executedRange": _range(finished), "failedRange": "",
        "lastUpdateTimestamp": api_time_precise(now),
        "executionTimeByCpuModel": [{"model": cpu, "time": round(executed), "core": 1}] if executed else [],
        "executionTimeGhzByCpuModel": [{"model": cpu, "timeGhz": round(executed * ghz, 3), "clockRatio": 1.0,
                                        "core": 1}] if executed else [],
        "runningInstancesInfo": {
            "perRunningInstanceInfo": [
                {"instanceId": i, "phase": "execution", "cpuUsage": BUSY_CPU, "memoryUsage": round(BUSY_CPU / 250, 4),
                 "maxFrequencyGHz": ghz, "currentFrequencyGHz": ghz, "progress": 0.0,
                 "executionTimeSec": round(now - start), "executionTimeGHz": round((now - start) * ghz, 3),
                 "cpuModel": cpu, "coreCount": 1, "executionAttemptCount": 1, "activeForwards": [],
                 "vpnConnections": []}
                for i, start in shown],
            "timestamp": api_time_precise(now), "averageCpuUsage": BUSY_CPU if running else 0.0,
            "snapshotResults": [], "runningCoreCountByCpuModel": [],
        },
    }


def _instances(task: EmulatedTask):
    """(instance id, start) of each started instance, ids in start order."""
    i = 0
    for start, n in task.starts:
        for _ in range(n):
            yield i, start
            i += 1


def _running(task: EmulatedTask, now: float) -> list[tuple[float, int]]:
    return [(at, n) for at, n in task.starts if at <= now < at + task.duration]


def _range(count: int) -> str:
    return "" if count == 0 else ("0" if count == 1 else f"0-{count - 1}")
