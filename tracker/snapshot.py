"""Immutable values for what one poll saw of one pool.

The API client turns pool documents into `PoolSnapshot`s; derivation diffs them into events.
Times are timezone-aware UTC datetimes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.scaling import Scaling
from policies.settings import ElasticSettings

STATES = ("UnSubmitted", "Submitted", "PartiallyDispatched", "FullyDispatched", "PartiallyExecuting",
          "FullyExecuting", "Closing", "Closed", "Failure", "PendingDelete")
FINISHED = ("Closed", "Failure")   # terminal: such a pool never changes again, only disappears


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    uuid: str
    name: str
    state: str
    shortname: str | None = None
    profile: str | None = None
    previous_state: str | None = None
    state_transition_time: datetime | None = None
    previous_state_transition_time: datetime | None = None
    creation_date: datetime | None = None
    last_modified: datetime | None = None
    instance_count: int = 0
    running_instance_count: int = 0               # running nodes; each holds `slots_per_node` slots
    running_core_count: int = 0
    queued_or_running_task_instances: int = 0
    execution_time_seconds: float = 0.0
    elastic: ElasticSettings | None = None
    tags: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()      # sorted (key, value) pairs: hashable and ordered
    errors: tuple[str, ...] = ()                  # error messages as the API reports them
    slots_per_node: int = 1                       # multiSlotsSettings.slotsPerNode
    total_slot_capacity: int | None = None        # a static pool's slots, an elastic one's maximum
    pool_usage: float | None = None               # dispatched task instances / slot capacity
    scheduling_type: str | None = None            # Flex, OnDemand, Reserved
    project: str | None = None                    # projectUuid: whose budgets the pool spends
    scaling: Scaling | None = None                # the policies (activePolicyName kept apart, below)
    active_policy: str | None = None              # scaling.activePolicyName

    @property
    def running_slots(self) -> int:
        return self.running_instance_count * self.slots_per_node


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A pool document that failed to parse: quarantined (recorded with its reason), never fatal to a poll."""
    uuid: str | None
    reason: str
