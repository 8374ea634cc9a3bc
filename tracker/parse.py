"""Pool documents (the API's JSON) -> `PoolSnapshot` values.

Pure and fast: a 10,000-pool poll parses here, so each field is read once with no generic machinery.
Unknown fields are ignored and missing optional ones take neutral defaults. A document is accepted only
with values every later stage can handle (counts within int64 and >= 0, finite numbers, dates that stay
dates in UTC); anything else is rejected with a message naming the field, and the poll quarantines that
one pool instead of failing.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from functools import lru_cache

import orjson

from policies.scaling import InvalidScaling, Scaling
from policies.settings import API_FIELDS, ElasticSettings
from tracker.snapshot import PoolSnapshot


class BadDocument(ValueError):
    """A pool document the tracker cannot read; the message names the field."""


INT64_MAX = 2**63 - 1
MAX_SECONDS = 10**12      # ~31,700 years: any real duration is far below, and it stays exact as a float


def parse_timespan(text: str) -> float:
    """.NET timespan `[-][d.]hh:mm:ss[.fffffff]` -> seconds."""
    try:
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("-")
        head, minutes, seconds = body.split(":")
        days, _, hours = head.rpartition(".")
        total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (ValueError, AttributeError):
        raise BadDocument(f"not a timespan [d.]hh:mm:ss[.fffffff]: {text!r}") from None
    if not math.isfinite(total) or total >= MAX_SECONDS:
        raise BadDocument(f"timespan out of range: {text!r}")
    return sign * total


def format_timespan(seconds: float) -> str:
    """Seconds -> .NET timespan string, as the API sends `executionTime`."""
    ticks = round(seconds * 10_000_000)
    days, rest = divmod(ticks, 86400 * 10_000_000)
    hours, rest = divmod(rest, 3600 * 10_000_000)
    minutes, rest = divmod(rest, 60 * 10_000_000)
    secs, frac = divmod(rest, 10_000_000)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}" + (f".{frac:07d}" if frac else "")
    return f"{days}.{text}" if days else text


def parse_time(text: str | None) -> datetime | None:
    """API date `YYYY-MM-DDTHH:MM:SS[.f]Z` -> aware UTC datetime (None stays None)."""
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text)
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        raise BadDocument(f"not a UTC date within years 1-9999: {text!r}") from None


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(doc: dict, key: str) -> int:
    return _count(key, doc.get(key))


def _count(key: str, value: object) -> int:
    """A non-negative integer within int64 (what DuckDB and Prometheus can hold); None is 0."""
    if value is None:
        return 0
    if type(value) is not int:
        if not (isinstance(value, float) and value.is_integer()):
            raise BadDocument(f"field {key!r} should be an integer, got {_short(value)}")
        value = int(value)
    if not 0 <= value <= INT64_MAX:
        raise BadDocument(f"field {key!r} should be between 0 and 2^63-1, got {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _str(doc: dict, key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise BadDocument(f"field {key!r} should be a string, got {value!r}")
    return value


def _time(doc: dict, key: str) -> datetime | None:
    try:
        return parse_time(doc.get(key))
    except BadDocument as exc:
        raise BadDocument(f"field {key!r}: {exc}") from None


FIELDS_READ = (   # every top-level field parse_pool reads: all a poll needs to ask the API for
    "uuid", "name", "shortname", "profile", "projectUuid", "tags", "labels", "schedulingType", "state",
    "previousState", "stateTransitionTime", "previousStateTransitionTime", "creationDate", "lastModified",
    "instanceCount", "runningInstanceCount", "runningCoreCount", "queuedOrRunningTaskInstancesCount",
    "totalSlotCapacity", "poolUsage", "multiSlotsSettings", "executionTime", "elasticProperty", "scaling",
    "errors")


def parse_pool(doc: object) -> PoolSnapshot:
    """One pool document -> snapshot, or `BadDocument` naming what is wrong."""
    if not isinstance(doc, dict):
        raise BadDocument(f"a pool should be a JSON object, got {type(doc).__name__}")
    uuid = doc.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise BadDocument("pool document has no 'uuid'")
    state = _str(doc, "state")
    if not state:
        raise BadDocument(f"pool {uuid}: field 'state' is missing")
    try:
        elastic = doc.get("elasticProperty")
        if elastic is not None and not isinstance(elastic, dict):
            raise BadDocument(f"field 'elasticProperty' should be an object, got {elastic!r}")
        tags = doc.get("tags") or ()
        labels = doc.get("labels") or {}
        if not isinstance(tags, (list, tuple)) or not isinstance(labels, dict):
            raise BadDocument("fields 'tags' (list) and 'labels' (object) have the wrong type")
        scaling, active = _scaling(doc.get("scaling"))
        multi = doc.get("multiSlotsSettings") or {}
        if not isinstance(multi, dict):
            raise BadDocument(f"field 'multiSlotsSettings' should be an object, got {_short(multi)}")
        slots_per_node = _count("multiSlotsSettings.slotsPerNode", multi.get("slotsPerNode")) or 1
        capacity = doc.get("totalSlotCapacity")
        usage = doc.get("poolUsage")
        if usage is not None and (not isinstance(usage, (int, float)) or isinstance(usage, bool)
                                  or not math.isfinite(usage) or usage < 0):
            raise BadDocument(f"field 'poolUsage' should be a finite number >= 0, got {_short(usage)}")
        execution = doc.get("executionTime")
        if execution is not None and not isinstance(execution, str):
            raise BadDocument(f"field 'executionTime' should be a timespan string, got {_short(execution)}")
        return PoolSnapshot(
            uuid=uuid,
            name=_str(doc, "name") or "",
            state=state,
            shortname=_str(doc, "shortname"),
            profile=_str(doc, "profile"),
            previous_state=_str(doc, "previousState"),
            state_transition_time=_time(doc, "stateTransitionTime"),
            previous_state_transition_time=_time(doc, "previousStateTransitionTime"),
            creation_date=_time(doc, "creationDate"),
            last_modified=_time(doc, "lastModified"),
            instance_count=_int(doc, "instanceCount"),
            running_instance_count=_int(doc, "runningInstanceCount"),
            running_core_count=_int(doc, "runningCoreCount"),
            queued_or_running_task_instances=_int(doc, "queuedOrRunningTaskInstancesCount"),
            execution_time_seconds=_execution(execution) if execution else 0.0,
            elastic=_elastic(tuple(elastic.items())) if elastic else None,
            tags=tuple(map(str, tags)),
            labels=tuple(sorted(zip(map(str, labels), map(str, labels.values())))),
            errors=_errors(doc.get("errors")),
            slots_per_node=slots_per_node,
            total_slot_capacity=None if capacity is None else _count("totalSlotCapacity", capacity),
            pool_usage=None if usage is None else float(usage),
            scheduling_type=_str(doc, "schedulingType"),
            project=_str(doc, "projectUuid"),
            scaling=scaling,
            active_policy=active,
        )
    except BadDocument as exc:
        raise BadDocument(f"pool {uuid}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadDocument(f"pool {uuid}: unexpected value ({exc})") from None


def _execution(text: str) -> float:
    try:
        seconds = parse_timespan(text)
    except BadDocument as exc:
        raise BadDocument(f"field 'executionTime': {exc}") from None
    if seconds < 0:
        raise BadDocument(f"field 'executionTime' should not be negative, got {text!r}")
    return seconds


@lru_cache(maxsize=4096)
def _elastic(items: tuple) -> ElasticSettings:
    """Most pools share a few settings: parse each distinct `elasticProperty` once. Knobs must be numbers
    metrics and the model can use; whether they obey the API's rules is the advisor's business."""
    body = dict(items)
    settings = ElasticSettings.from_api(body)
    for ours in ("min_total_slots", "max_total_slots", "min_idle_slots", "min_idle_time_seconds", "resize_period"):
        _count(f"elasticProperty.{API_FIELDS[ours]}", getattr(settings, ours))
    if not math.isfinite(settings.resize_factor) or settings.resize_factor < 0:
        raise BadDocument(f"field 'elasticProperty.rampResizeFactor' should be a finite number >= 0, "
                          f"got {_short(body.get('rampResizeFactor'))}")
    return settings


def _scaling(body: object) -> tuple[Scaling | None, str | None]:
    """`scaling` -> (its policies, activePolicyName). The active name moves with time, the policies only
    when someone changes them, so they are kept apart (and a change of either is its own event)."""
    if body is None:
        return None, None
    try:
        key = orjson.dumps(body)
    except TypeError:           # not JSON (a document built in code): parse it as it is
        key = None
    if key is None or orjson.loads(key) != body:    # NaN, tuples...: only JSON values share a parse
        return _scaling_of(body)
    return _scaling_of_json(key)


@lru_cache(maxsize=4096)
def _scaling_of_json(key: bytes) -> tuple[Scaling, str | None]:
    """Most pools share a few scaling documents: parse each distinct one once (15 us each), keyed on its JSON."""
    return _scaling_of(orjson.loads(key))


def _scaling_of(body: object) -> tuple[Scaling, str | None]:
    try:
        scaling = Scaling.from_api(body)
    except InvalidScaling as exc:
        raise BadDocument(f"field 'scaling.{exc.field}': {exc.problem}") from None
    return Scaling(scaling.policies), scaling.active_policy_name


def _errors(errors: object) -> tuple[str, ...]:
    if not errors:
        return ()
    if not isinstance(errors, list):
        raise BadDocument(f"field 'errors' should be a list, got {errors!r}")
    return tuple(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors)
