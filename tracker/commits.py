"""What a commit sends: the pool's document as read, with only the part the commit means to change
replaced. Pure: a commit never rebuilds a document from the fields it knows (that drops the ones it does
not), never flips `isElastic`, and never moves a pool between `elasticProperty` and `scaling` unless the
operator allowed it. What cannot be committed safely is refused with a reason code."""
from __future__ import annotations

import copy

from policies.scaling import Always, InvalidScaling, ManagedTasksQueuePolicy, Scaling
from policies.settings import ElasticSettings

# Fields that move on their own (counts, clocks, status): left out when comparing before and after.
VOLATILE = frozenset({"state", "previousState", "stateTransitionTime", "previousStateTransitionTime", "lastModified",
                      "endDate", "errors", "instanceCount", "runningCoreCount", "runningInstanceCount", "poolUsage",
                      "queuedOrRunningTaskInstancesCount", "executionTime", "status", "totalSlotCapacity"})


class CommitRefused(Exception):
    """A commit that would change more than it means to; `code` says which rule held it back."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def elastic_change(doc: dict, settings: ElasticSettings, allow_form_change: bool = False) -> dict:
    """The document to PUT so that the pool takes `settings`, and nothing else changes.

    A pool sized by one `ManagedTasksQueue` policy takes the knobs in that policy (scaling has no resize
    period); a pool with several policies needs a scaling document, not elastic settings."""
    body = copy.deepcopy(doc)
    if doc.get("scaling") is not None:
        current = Scaling.from_api(doc["scaling"])
        policy = current.policies[0] if len(current.policies) == 1 else None
        if not (isinstance(policy, ManagedTasksQueuePolicy) and all(isinstance(p, Always) for p in policy.periods)):
            raise CommitRefused("scaling_managed", f"the pool is sized by a scaling document of {len(current.policies)} "
                                "policies; commit a scaling document, not elastic settings")
        body["scaling"] = Scaling((ManagedTasksQueuePolicy(
            policy.name, settings.min_total_slots, settings.max_total_slots, settings.min_idle_slots,
            settings.min_idle_time_seconds, float(settings.resize_factor), policy.periods),)).to_api()
        return body
    current = ElasticSettings.from_api(doc.get("elasticProperty") or {})
    if not current.is_elastic and not allow_form_change:
        raise CommitRefused("static_pool", "the pool is static (isElastic false); committing elastic settings "
                            "would make it elastic. Set advisor.allow_form_change = true to allow that")
    wanted = settings if allow_form_change else settings.with_(is_elastic=current.is_elastic)
    body["elasticProperty"] = wanted.validated().to_api()
    return body


def scaling_change(doc: dict, scaling: Scaling, allow_form_change: bool = False) -> dict:
    """The document to PUT so that the pool takes `scaling` (its policies; the API picks the active one)."""
    if doc.get("scaling") is None and not allow_form_change:
        raise CommitRefused("legacy_pool", "the pool is sized by elasticProperty, not scaling; set "
                            "advisor.allow_form_change = true to move it to a scaling document")
    body = copy.deepcopy(doc)
    body["scaling"] = Scaling(scaling.policies).to_api()
    return body


def changed_fields(before: dict, after: dict) -> list[str]:
    """Top-level fields that differ, leaving out those that move by themselves."""
    keys = (before.keys() | after.keys()) - VOLATILE
    return sorted(k for k in keys if _comparable(k, before.get(k)) != _comparable(k, after.get(k)))


def _comparable(key: str, value):
    if key == "scaling" and isinstance(value, dict):   # which policy is active moves with time
        return {k: v for k, v in value.items() if k != "activePolicyName"}
    return value


class NotConfirmed(Exception):
    """The API accepted the commit but the pool does not read back as sent: a failed commit."""


def confirm(sent: dict, read_back: dict, part: str) -> None:
    if _canonical(part, sent.get(part)) != _canonical(part, read_back.get(part)):
        raise NotConfirmed(f"{part} read back as {read_back.get(part)!r} after sending {sent.get(part)!r}")


def _canonical(part: str, value):
    try:
        if part == "scaling" and value is not None:
            return Scaling(Scaling.from_api(value).policies)
        if part == "elasticProperty" and value is not None:
            return ElasticSettings.from_api(value)
    except (InvalidScaling, TypeError, ValueError):
        pass
    return value
