"""The filter tree of `POST /pools/paginate` and `POST /tasks/paginate`, as far as the emulator implements it.

Nodes: `{"operator": "And"|"Or", "filters": [...]}`; leaves: `{"operator", "field", "value"}` with
operators Equal, NotEqual (a scalar value), In, NotIn (a list of values) on the fields below (pools:
`FIELDS`, tasks: `task_fields`, e.g. PoolUuid and State). A field
holding a list (Tags) matches Equal/In when any of its items does. Operator and field names are matched
case-insensitively. Anything else (ranges, Like, dates, unknown fields) is refused up front with
`UnsupportedFilter` naming it, so a client never mistakes an unsupported filter for an empty result.
"""
from __future__ import annotations

from typing import Callable

from tracker.emulator.cluster import EmulatedPool
from tracker.emulator.tasks import EmulatedTask

FIELDS: dict[str, Callable[[EmulatedPool], list]] = {
    "Tags": lambda p: list(p.tags),
    "Name": lambda p: [p.name],
    "Shortname": lambda p: [p.shortname or p.uuid],
    "Uuid": lambda p: [p.uuid],
    "State": lambda p: [p.state],
    "Profile": lambda p: [p.profile],
    "SchedulingType": lambda p: [p.scheduling_type],
}


def task_fields(now: float) -> dict[str, Callable[[EmulatedTask], list]]:
    """The task fields a filter can name; a task's State is the one it has at `now`."""
    return {
        "PoolUuid": lambda t: [t.pool],
        "Uuid": lambda t: [t.uuid],
        "Name": lambda t: [t.name],
        "Shortname": lambda t: [t.uuid],
        "State": lambda t: [t.state_at(now)[0][1]],
        "Tags": lambda t: list(t.extra.get("tags") or ()),
    }


LEAF_OPERATORS = ("Equal", "NotEqual", "In", "NotIn")
NODE_OPERATORS = ("And", "Or")
Predicate = Callable[[EmulatedPool], bool]


class UnsupportedFilter(ValueError):
    """A filter the emulator cannot evaluate; the message names the operator or field."""


def _known(name: object, choices) -> str | None:
    if not isinstance(name, str):
        return None
    return next((c for c in choices if c.lower() == name.lower()), None)


def compile_filter(node: object, fields: dict[str, Callable] = FIELDS) -> Predicate:
    """A filter tree (or None) -> a predicate on pools (or on what `fields` reads), or `UnsupportedFilter`."""
    if node is None or node == {}:
        return lambda pool: True
    if not isinstance(node, dict):
        raise UnsupportedFilter(f"a filter must be an object, got {node!r}")
    raw_op = node.get("operator")
    op = _known(raw_op, NODE_OPERATORS + LEAF_OPERATORS)
    if op is None:
        raise UnsupportedFilter(f"unsupported filter operator {raw_op!r}; supported: "
                                f"{', '.join(NODE_OPERATORS + LEAF_OPERATORS)}")
    if op in NODE_OPERATORS:
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise UnsupportedFilter(f"filter operator {op!r} needs a non-empty 'filters' list")
        tests = [compile_filter(child, fields) for child in children]
        combine = all if op == "And" else any
        return lambda pool: combine(test(pool) for test in tests)
    raw_field = node.get("field")
    field = _known(raw_field, fields)
    if field is None:
        raise UnsupportedFilter(f"unsupported filter field {raw_field!r} for operator {op!r}; "
                                f"supported fields: {', '.join(fields)}")
    value, read = node.get("value"), fields[field]
    if op in ("In", "NotIn"):
        if not isinstance(value, list):
            raise UnsupportedFilter(f"filter operator {op!r} on {field!r} needs a list value, got {value!r}")
        wanted = set(map(str, value))
    else:
        if isinstance(value, (list, dict)):
            raise UnsupportedFilter(f"filter operator {op!r} on {field!r} needs a single value, got {value!r}")
        wanted = {str(value)}
    negate = op.startswith("Not")
    return lambda pool: negate != any(item in wanted for item in read(pool))


def named_pools(node: object) -> set[str] | None:
    """The pools a task filter is limited to (a `PoolUuid` Equal/In leaf, alone or inside an And), or None
    when it may match any pool: lets a listing read only those pools' tasks."""
    if not isinstance(node, dict):
        return None
    op = _known(node.get("operator"), NODE_OPERATORS + LEAF_OPERATORS)
    if op == "And" and isinstance(node.get("filters"), list):
        limits = [found for found in map(named_pools, node["filters"]) if found is not None]
        return set.intersection(*limits) if limits else None
    if op in ("Equal", "In") and _known(node.get("field"), ("PoolUuid",)):
        value = node.get("value")
        return set(map(str, value)) if isinstance(value, list) else {str(value)}
    return None
