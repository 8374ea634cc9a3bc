"""Nodes of an emulated pool: from the model's slots to the instances and cores the API reports.

A Qarnot node (one running instance) holds `slotsPerNode` slots (`multiSlotsSettings`). The elastic
model counts slots, so the emulator reports `ceil(ready slots / slotsPerNode)` running nodes: a node
starts whole and stays up while any of its slots is up. Running cores are nodes x cores per node.
The integral of running nodes over time (node-seconds, the emulator's `executionTime`) and of running
cores (core-seconds = node-seconds x cores per node, the ground truth) are kept exactly, change by change.

Which node a released slot sat on is not knowable from the model; when nodes go away the emulator
drops the most recently started ones (their start times only feed `perRunningInstanceInfo`).
"""
from __future__ import annotations


class NodeMeter:
    def __init__(self, slots_per_node: int, cores_per_node: int, start: float) -> None:
        if slots_per_node < 1:
            raise ValueError(f"slotsPerNode must be at least 1, got {slots_per_node}")
        self.slots_per_node, self.cores_per_node = slots_per_node, cores_per_node
        self.count = 0                    # running nodes
        self.started: list[float] = []    # start time of each running node, oldest first
        self._node_seconds, self._since = 0.0, float(start)

    def nodes_for(self, slots: int) -> int:
        return -(-slots // self.slots_per_node)

    def set_slots(self, at: float, slots: int) -> tuple[int, int] | None:
        """Ready slots changed at `at`; returns (old, new) running cores when they changed."""
        nodes = self.nodes_for(slots)
        if nodes == self.count:
            return None
        self._node_seconds += self.count * (at - self._since)
        self._since = at
        if nodes > self.count:
            self.started.extend([at] * (nodes - self.count))
        else:
            del self.started[nodes:]
        old, self.count = self.count, nodes
        return old * self.cores_per_node, nodes * self.cores_per_node

    def node_seconds(self, now: float) -> float:
        """Integral of running nodes (instances) from the pool's creation up to `now`."""
        return self._node_seconds + self.count * max(0.0, now - self._since)

    def core_seconds(self, now: float) -> float:
        """Integral of running cores from the pool's creation up to `now` (every node has the same cores)."""
        return self.node_seconds(now) * self.cores_per_node
