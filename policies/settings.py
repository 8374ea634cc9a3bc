"""The six elastic knobs of a Qarnot pool, as one immutable value.

Shared by the API client (parsing/committing), the emulator, the back-tester and the policies,
so a setting means the same thing everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

MIN_RESIZE_PERIOD = 90   # seconds: Qarnot's documented minimum resize period (C# SDK remark)

# The SDK's `setup_elastic()` defaults.
SDK_DEFAULTS = dict(min_total_slots=0, max_total_slots=1, min_idle_slots=0,
                    min_idle_time_seconds=0, resize_factor=1.0, resize_period=90)

API_FIELDS = {  # our name -> the API's JSON name inside `elasticProperty`
    "min_total_slots": "minTotalSlots",
    "max_total_slots": "maxTotalSlots",
    "min_idle_slots": "minIdleSlots",
    "min_idle_time_seconds": "minIdleTimeSeconds",
    "resize_factor": "rampResizeFactor",
    "resize_period": "resizePeriod",
}


class InvalidSettings(ValueError):
    """Elastic settings outside the API's valid ranges."""


@dataclass(frozen=True, slots=True)
class ElasticSettings:
    min_total_slots: int = 0
    max_total_slots: int = 1
    min_idle_slots: int = 0
    min_idle_time_seconds: int = 0
    resize_factor: float = 1.0
    resize_period: int = 90
    is_elastic: bool = True

    def problems(self) -> list[str]:
        """Every way these settings break the API's rules, as sentences (empty when valid)."""
        out = []
        for name in ("min_total_slots", "max_total_slots", "min_idle_slots", "min_idle_time_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                out.append(f"{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.resize_period, int) or self.resize_period < MIN_RESIZE_PERIOD:
            out.append(f"resize_period must be an integer of at least {MIN_RESIZE_PERIOD} seconds (Qarnot's "
                       f"minimum), got {self.resize_period!r}")
        if not (0 < self.resize_factor <= 1):
            out.append(f"resize_factor must be in (0, 1], got {self.resize_factor!r}")
        if not out and self.min_total_slots > self.max_total_slots:
            out.append(f"min_total_slots ({self.min_total_slots}) must not exceed "
                       f"max_total_slots ({self.max_total_slots})")
        return out

    def validated(self) -> "ElasticSettings":
        problems = self.problems()
        if problems:
            raise InvalidSettings("; ".join(problems))
        return self

    def with_(self, **changes) -> "ElasticSettings":
        return replace(self, **changes)

    def to_api(self) -> dict:
        """The `elasticProperty` object exactly as the SDK serialises it."""
        body = {"isElastic": self.is_elastic}
        body.update({api: getattr(self, ours) for ours, api in API_FIELDS.items()})
        return body

    @classmethod
    def from_api(cls, body: dict) -> "ElasticSettings":
        """Parse `elasticProperty`; missing knobs take the SDK defaults."""
        kwargs = {ours: body.get(api, SDK_DEFAULTS[ours]) for ours, api in API_FIELDS.items()}
        kwargs = {k: (SDK_DEFAULTS[k] if v is None else v) for k, v in kwargs.items()}
        kwargs["resize_factor"] = float(kwargs["resize_factor"])
        return cls(is_elastic=bool(body.get("isElastic", False)), **kwargs)
