"""Qarnot's `scaling`: an ordered list of sizing policies, each enabled over periods of the week.

The first policy enabled at an instant applies (the API reports it as `activePolicyName`). A scaling
document is a value: frozen, comparable, hashable, and serialised to the API's own JSON names, so a
policy can return one, a commit can send one and the model can run one.

Assumptions (Qarnot does not publish these rules):
- A Weekly window covers [startTimeUtc, endTimeUtc) on each listed day, in UTC. A window whose end is
  not after its start wraps past midnight into the next day (start == end: a full 24 hours).
- When no policy is enabled, the pool holds no slots: `policy_at` answers None and the model treats
  that as a Fixed policy of 0 slots.

Weekdays come from epoch seconds by arithmetic (1970-01-05 was a Monday): no calendar, no clock.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Union

from policies.settings import MIN_RESIZE_PERIOD, ElasticSettings, InvalidSettings

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86400
WEEK = 7 * DAY
MONDAY = 4 * DAY                # 1970-01-05 00:00 UTC, the first Monday of the epoch
LEGACY_POLICY_NAME = "elastic"  # the one policy `from_elastic` makes out of `elasticProperty`
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.\d+)?")   # fractions of a second are ignored


class InvalidScaling(InvalidSettings):
    """A scaling document the API would refuse; `field` is the path to the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def week_second(at: float) -> float:
    """Seconds since the last Monday 00:00 UTC."""
    return (at - MONDAY) % WEEK


def _week_start(at: float) -> float:
    """The Monday 00:00 UTC at or before `at`, exactly (an integer number of weeks from MONDAY)."""
    return MONDAY + WEEK * math.floor((at - MONDAY) / WEEK)


def parse_time(text: Any, field: str) -> int:
    """"HH:MM:SS" -> seconds after midnight."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3]) > 59:
        raise InvalidScaling(field, f"must be a time of day \"HH:MM:SS\", got {text!r}")
    return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])


def format_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True, slots=True)
class Always:
    name: str | None = None

    def enabled(self, at: float) -> bool:
        return True

    def boundaries(self) -> tuple[int, ...]:
        """Seconds of the week (from Monday 00:00 UTC) where this period can switch on or off."""
        return ()

    def to_api(self) -> dict:
        return {"type": "Always", **({} if self.name is None else {"name": self.name})}


@dataclass(frozen=True, slots=True)
class Weekly:
    """[start, end) seconds after 00:00 UTC on each of `days`; wraps past midnight when end <= start."""
    days: tuple[str, ...]
    start: int
    end: int
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(self.days))   # a list would make the value unhashable
        for day in self.days:
            if day not in DAYS:
                raise InvalidScaling("days", f"unknown day {day!r}; use {', '.join(DAYS)}")
        for field, value in (("startTimeUtc", self.start), ("endTimeUtc", self.end)):
            if not isinstance(value, int) or not 0 <= value < DAY:
                raise InvalidScaling(field, f"must be seconds within a day, got {value!r}")

    def enabled(self, at: float) -> bool:
        second = week_second(at)
        weekday = int(second // DAY)
        second -= weekday * DAY
        if self.start < self.end:
            return DAYS[weekday] in self.days and self.start <= second < self.end
        return ((DAYS[weekday] in self.days and second >= self.start)
                or (DAYS[weekday - 1] in self.days and second < self.end))   # the previous day's tail

    def boundaries(self) -> tuple[int, ...]:
        out = []
        for day in self.days:
            base = DAYS.index(day) * DAY
            out.append(base + self.start)
            out.append((base + self.end + (DAY if self.end <= self.start else 0)) % WEEK)
        return tuple(out)

    def to_api(self) -> dict:
        return {"type": "Weekly", **({} if self.name is None else {"name": self.name}), "days": list(self.days),
                "startTimeUtc": format_time(self.start), "endTimeUtc": format_time(self.end)}


Period = Union[Always, Weekly]
ALWAYS: tuple[Period, ...] = (Always(),)


def _enabled(periods: tuple[Period, ...], at: float) -> bool:
    return any(period.enabled(at) for period in periods)


def _count(field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidScaling(field, f"must be a non-negative integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class FixedPolicy:
    """Exactly `slots_count` slots while enabled."""
    name: str
    slots_count: int
    periods: tuple[Period, ...] = ALWAYS

    def __post_init__(self) -> None:
        _count("slotsCount", self.slots_count)

    def enabled(self, at: float) -> bool:
        return _enabled(self.periods, at)

    def to_api(self) -> dict:
        return {"type": "Fixed", "name": self.name, "slotsCount": self.slots_count,
                "enabledPeriods": [period.to_api() for period in self.periods]}


@dataclass(frozen=True, slots=True)
class ManagedTasksQueuePolicy:
    """Elastic between min and max total slots, driven by the task queue (defaults: Qarnot's C# SDK)."""
    name: str
    min_total_slots: int = 0
    max_total_slots: int = 1
    min_idle_slots: int = 0
    min_idle_time_seconds: int = 90
    scaling_factor: float = 0.2
    periods: tuple[Period, ...] = ALWAYS

    def __post_init__(self) -> None:
        for field, value in (("minTotalSlots", self.min_total_slots), ("maxTotalSlots", self.max_total_slots),
                             ("minIdleSlots", self.min_idle_slots),
                             ("minIdleTimeSeconds", self.min_idle_time_seconds)):
            _count(field, value)
        if self.min_total_slots > self.max_total_slots:
            raise InvalidScaling("minTotalSlots", f"{self.min_total_slots} exceeds maxTotalSlots "
                                                  f"{self.max_total_slots}")
        factor = self.scaling_factor
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0 < factor <= 1:
            raise InvalidScaling("scalingFactor", f"must be in (0, 1], got {factor!r}")

    def enabled(self, at: float) -> bool:
        return _enabled(self.periods, at)

    def to_api(self) -> dict:
        return {"type": "ManagedTasksQueue", "name": self.name, "minTotalSlots": self.min_total_slots,
                "maxTotalSlots": self.max_total_slots, "minIdleSlots": self.min_idle_slots,
                "minIdleTimeSeconds": self.min_idle_time_seconds, "scalingFactor": self.scaling_factor,
                "enabledPeriods": [period.to_api() for period in self.periods]}


Policy = Union[FixedPolicy, ManagedTasksQueuePolicy]


@dataclass(frozen=True, slots=True)
class Scaling:
    policies: tuple[Policy, ...]
    active_policy_name: str | None = None   # as the API reported it; the model computes its own

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", tuple(self.policies))
        names = [policy.name for policy in self.policies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidScaling(f"policies[{i}].name", f"{name!r} names two policies")

    def policy_at(self, at: float) -> Policy | None:
        """The first policy enabled at epoch second `at`, or None when none is (the pool holds 0 slots)."""
        for policy in self.policies:
            if policy.enabled(at):
                return policy
        return None

    def next_change_after(self, at: float) -> float:
        """The first instant after `at` where a period boundary may change the active policy (inf if none)."""
        marks = {mark for policy in self.policies for period in policy.periods for mark in period.boundaries()}
        if not marks:
            return math.inf
        week = _week_start(at)
        return min(week + mark + (WEEK if week + mark <= at else 0) for mark in marks)

    @classmethod
    def from_elastic(cls, settings: ElasticSettings) -> Scaling:
        """The legacy `elasticProperty` as one Always ManagedTasksQueue policy (resizePeriod stays the
        model's tick period: scaling has no such field)."""
        return cls((ManagedTasksQueuePolicy(
            LEGACY_POLICY_NAME, settings.min_total_slots, settings.max_total_slots, settings.min_idle_slots,
            settings.min_idle_time_seconds, float(settings.resize_factor)),))

    def elastic_equivalent(self) -> ElasticSettings | None:
        """The knobs of the pool's default: its last ManagedTasksQueue policy (the one in force when no window
        is), as legacy settings, for the policies that reason in those knobs only."""
        managed = [p for p in self.policies if isinstance(p, ManagedTasksQueuePolicy)]
        if not managed:
            return None
        p = managed[-1]
        return ElasticSettings(min(p.min_total_slots, p.max_total_slots), p.max_total_slots, p.min_idle_slots,
                               p.min_idle_time_seconds, p.scaling_factor, MIN_RESIZE_PERIOD)

    def to_api(self) -> dict:
        body: dict = {"policies": [policy.to_api() for policy in self.policies]}
        if self.active_policy_name is not None:
            body["activePolicyName"] = self.active_policy_name
        return body

    @classmethod
    def from_api(cls, body: Any) -> Scaling:
        """Parse the API's `scaling` object; InvalidScaling names the first bad field."""
        if not isinstance(body, dict):
            raise InvalidScaling("scaling", f"must be an object, got {type(body).__name__}")
        active = body.get("activePolicyName")
        if active is not None and not isinstance(active, str):
            raise InvalidScaling("activePolicyName", f"must be a string, got {active!r}")
        items = _list(body, "policies", "policies")
        policies = tuple(_policy(item, f"policies[{i}]") for i, item in enumerate(items))
        return cls(policies, active)


def _list(body: dict, key: str, path: str) -> list:
    value = body.get(key)
    if not isinstance(value, list):
        raise InvalidScaling(path, f"must be a list, got {value!r}")
    return value


def _str(body: dict, key: str, path: str, optional: bool = False) -> Any:
    value = body.get(key)
    if not (isinstance(value, str) or (optional and value is None)):
        raise InvalidScaling(path, f"must be a string, got {value!r}")
    return value


def _within(path: str, build: Any, *args: Any) -> Any:
    """Build a value, prefixing the path of this object to the field a validation error names."""
    try:
        return build(*args)
    except InvalidScaling as exc:
        raise InvalidScaling(f"{path}.{exc.field}", exc.problem) from None


def _period(body: Any, path: str) -> Period:
    if not isinstance(body, dict):
        raise InvalidScaling(path, f"must be an object, got {body!r}")
    name = _str(body, "name", f"{path}.name", optional=True)
    kind = body.get("type")
    if kind == "Always":
        return Always(name)
    if kind != "Weekly":
        raise InvalidScaling(f"{path}.type", f"must be Always or Weekly, got {kind!r}")
    days = [day.lower() if isinstance(day, str) else day for day in _list(body, "days", f"{path}.days")]
    for i, day in enumerate(days):   # any case, as the SDK reads them; sent back lowercase, as it writes them
        if day not in DAYS:
            raise InvalidScaling(f"{path}.days[{i}]", f"must be a day name ({', '.join(DAYS)}), got {day!r}")
    return _within(path, Weekly, tuple(days), parse_time(body.get("startTimeUtc"), f"{path}.startTimeUtc"),
                   parse_time(body.get("endTimeUtc"), f"{path}.endTimeUtc"), name)


def _policy(body: Any, path: str) -> Policy:
    if not isinstance(body, dict):
        raise InvalidScaling(path, f"must be an object, got {body!r}")
    name = _str(body, "name", f"{path}.name")
    periods = tuple(_period(item, f"{path}.enabledPeriods[{i}]")
                    for i, item in enumerate(_list(body, "enabledPeriods", f"{path}.enabledPeriods")))
    kind = body.get("type")
    if kind == "Fixed":
        return _within(path, FixedPolicy, name, body.get("slotsCount"), periods)
    if kind == "ManagedTasksQueue":
        factor = body.get("scalingFactor")
        if isinstance(factor, int) and not isinstance(factor, bool):
            factor = float(factor)
        return _within(path, ManagedTasksQueuePolicy, name, body.get("minTotalSlots"), body.get("maxTotalSlots"),
                       body.get("minIdleSlots"), body.get("minIdleTimeSeconds"), factor, periods)
    raise InvalidScaling(f"{path}.type", f"must be Fixed or ManagedTasksQueue, got {kind!r}")
