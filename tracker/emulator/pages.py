"""Keyset pagination: pools (or tasks) in creation order, a page token naming the last one served.

The token is opaque to clients (base64 of JSON). Because it records where the listing stopped rather
than how many pools came before, deleting pools between two pages never makes the listing skip a pool,
and pools created meanwhile (always newer) show up on a later page.
"""
from __future__ import annotations

import base64
import binascii
from typing import Protocol, Sequence

import orjson


class Listed(Protocol):
    """What a page holds: a pool or a task (its creation sequence number and uuid)."""
    order: int
    uuid: str


def sort_key(pool: Listed) -> tuple[int, str]:
    return pool.order, pool.uuid


def encode_token(last: Listed) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": list(sort_key(last))})).decode()


def decode_token(token: object) -> tuple[int, str] | None:
    if token is None or token == "":
        return None
    try:
        order, uuid = orjson.loads(base64.urlsafe_b64decode(str(token).encode()))["after"]
        return int(order), str(uuid)
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ValueError("invalid pagination token") from None


def page(pools: Sequence[Listed], token: object, limit: int) -> tuple[list[Listed], str | None]:
    """The page after `token` and the next page's token (None on the last page)."""
    after = decode_token(token)
    ordered = sorted(pools, key=sort_key)   # already nearly sorted: the cluster keeps creation order
    if after is not None:
        ordered = [p for p in ordered if sort_key(p) > after]
    chosen = ordered[:limit]
    return chosen, encode_token(chosen[-1]) if len(ordered) > limit else None
