"""Pool documents (the API's JSON) -> `PoolSnapshot` values.

Pure and fast: a 10,000-pool poll parses here, so each field is read once with no generic machinery.
Unknown fields are ignored and missing optional ones take neutral defaults; a document without a
`uuid`, or with a field of the wrong type, is rejected with a message naming the field.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from policies.settings import ElasticSettings
from tracker.snapshot import PoolSnapshot


class BadDocument(ValueError):
    """A pool document the tracker cannot read; the message names the field."""


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
    except (TypeError, ValueError):
        raise BadDocument(f"not a UTC date: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(doc: dict, key: str) -> int:
    value = doc.get(key)
    if value is None:
        return 0
    if type(value) is not int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise BadDocument(f"field {key!r} should be an integer, got {value!r}")
    return value


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
        execution = doc.get("executionTime")
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
            execution_time_seconds=parse_timespan(execution) if execution else 0.0,
            elastic=_elastic(tuple(elastic.items())) if elastic else None,
            tags=tuple(str(t) for t in tags),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            errors=_errors(doc.get("errors")),
            cpu_usage=_cpu_usage(doc.get("status")),
        )
    except BadDocument as exc:
        raise BadDocument(f"pool {uuid}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadDocument(f"pool {uuid}: unexpected value ({exc})") from None


@lru_cache(maxsize=4096)
def _elastic(items: tuple) -> ElasticSettings:
    """Most pools share a few settings: parse each distinct `elasticProperty` once."""
    return ElasticSettings.from_api(dict(items))


def _errors(errors: object) -> tuple[str, ...]:
    if not errors:
        return ()
    if not isinstance(errors, list):
        raise BadDocument(f"field 'errors' should be a list, got {errors!r}")
    return tuple(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors)


def _cpu_usage(status: object) -> tuple[tuple[str, float], ...]:
    if not isinstance(status, dict):
        return ()
    info = status.get("runningInstancesInfo") or {}
    per_instance = info.get("perRunningInstanceInfo") or () if isinstance(info, dict) else ()
    return tuple((str(i.get("instanceId")), float(i["cpuUsage"]))
                 for i in per_instance if isinstance(i, dict) and i.get("cpuUsage") is not None)
