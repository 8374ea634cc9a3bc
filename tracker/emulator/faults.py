"""Fault injection for the emulator: the ways a real API misbehaves, seeded so runs repeat.

Shares are probabilities per request (0..1). Faults apply to the Qarnot paths only, never to the
emulator's own `/_emulator/*` control paths, and can be switched at runtime.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields


@dataclass
class Faults:
    server_errors: float = 0.0      # share of 500/502/503 answers
    rate_limited: float = 0.0       # share of 429 answers carrying Retry-After
    retry_after_seconds: float = 1.0
    latency_seconds: float = 0.0    # added to every answer
    malformed_json: float = 0.0     # share of 200 answers whose body is not JSON
    truncated_pages: float = 0.0    # share of list pages cut off in the middle of the JSON
    dropped_connections: float = 0.0  # share of requests whose connection closes mid-answer
    token_invalid_after: int | None = None  # after this many requests, every request gets 401
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> "Faults":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


class FaultPlan:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        self.faults, self.requests = faults, 0
        self._rng = random.Random(faults.seed)

    def next(self, is_page: bool) -> str | None:
        """One of: "unauthorized", "drop", "429", "500"/"502"/"503", "malformed", "truncated", or None."""
        f, rng = self.faults, self._rng
        self.requests += 1
        if f.token_invalid_after is not None and self.requests > f.token_invalid_after:
            return "unauthorized"
        for share, fault in ((f.dropped_connections, "drop"), (f.rate_limited, "429"),
                             (f.server_errors, "5xx"), (f.malformed_json, "malformed"),
                             (f.truncated_pages if is_page else 0.0, "truncated")):
            if share and rng.random() < share:
                return rng.choice(("500", "502", "503")) if fault == "5xx" else fault
        return None
