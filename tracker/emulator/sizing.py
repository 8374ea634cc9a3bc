"""How an emulated pool is sized: a `scaling` document (the current API) or legacy `elasticProperty`.

- A pool created or committed with a non-null `scaling` is sized by it from then on ("scaling wins"
  over an `elasticProperty` in the same request). A request without `scaling` (or with null) leaves an
  existing scaling document in force. Resending the pool's own scaling document changes nothing.
- `elasticProperty` is served as the last legacy settings the pool was given, validated (400) and kept
  even when a scaling document sizes the pool (for a pool created with only `scaling`, the SDK's
  non-elastic default: `instanceCount` nodes). Legacy pools serve `scaling: null`.
- `totalSlotCapacity` of a scaling pool: the largest slot count any of its policies allows (a Fixed
  policy's `slotsCount`, a ManagedTasksQueue policy's `maxTotalSlots`).

What the SDK may leave out of a policy (it omits every None field and empty lists) is filled before
validation, an unverified guess at the API's defaults: a ManagedTasksQueue policy's `minTotalSlots` and
`minIdleSlots` 0, `minIdleTimeSeconds` 90 and `scalingFactor` 0.2 (the C# SDK's defaults); a policy
without `enabledPeriods` is always enabled. `maxTotalSlots`, `slotsCount`, `name` and `policies` are
required: a scaling document without them answers 400 naming the field.
"""
from __future__ import annotations

import random

from policies.scaling import (DAYS, FixedPolicy, InvalidScaling, ManagedTasksQueuePolicy, Scaling,
                              Weekly)
from policies.settings import ElasticSettings, InvalidSettings

MANAGED_DEFAULTS = {"minTotalSlots": 0, "minIdleSlots": 0, "minIdleTimeSeconds": 90, "scalingFactor": 0.2}
WORKDAY = Weekly(DAYS[:5], 8 * 3600, 18 * 3600, "workday")   # weekdays 08:00-18:00 UTC


def parse_scaling(body: object) -> Scaling | None:
    """A request's `scaling` -> a Scaling (its `activePolicyName` dropped: the model computes it), None
    when absent or null, or InvalidScaling naming the bad field."""
    if body is None:
        return None
    if isinstance(body, dict) and isinstance(body.get("policies"), list):
        body = {**body, "policies": [_with_defaults(policy) for policy in body["policies"]]}
    return Scaling(Scaling.from_api(body).policies)


def _with_defaults(policy: object) -> object:
    if not isinstance(policy, dict):
        return policy
    filled = dict(policy)
    if filled.get("type") == "ManagedTasksQueue":
        for key, value in MANAGED_DEFAULTS.items():
            if filled.get(key) is None:
                filled[key] = value
    if filled.get("enabledPeriods") is None:
        filled["enabledPeriods"] = [{"type": "Always"}]
    return filled


def capacity(scaling: Scaling) -> int:
    """The largest slot count any policy allows."""
    return max((p.slots_count if isinstance(p, FixedPolicy) else p.max_total_slots for p in scaling.policies),
               default=0)


def served_scaling(scaling: Scaling, active: str | None) -> dict:
    """The pool document's `scaling`, with the `activePolicyName` the model has now."""
    return {"policies": [policy.to_api() for policy in scaling.policies], "activePolicyName": active}


def parse_settings(body: dict | None, fallback: ElasticSettings) -> ElasticSettings:
    """`elasticProperty` from a request -> settings, or InvalidSettings naming the problem."""
    if not body:
        return fallback
    try:
        return ElasticSettings.from_api(body).validated()
    except (TypeError, ValueError) as exc:
        raise InvalidSettings(str(exc)) from None


def seeded_scaling(plan: random.Random, weekly: bool) -> Scaling:
    """A seeded pool's scaling: an Always ManagedTasksQueue policy, after a weekday-hours Fixed one
    when `weekly`."""
    default = ManagedTasksQueuePolicy(
        "default", plan.choice((0, 0, 1)), plan.choice((10, 20, 40)), plan.choice((0, 1, 2)),
        plan.choice((90, 300, 900)), plan.choice((0.2, 0.5, 1.0)))
    if not weekly:
        return Scaling((default,))
    return Scaling((FixedPolicy("office-hours", plan.randint(2, 12), (WORKDAY,)), default))
