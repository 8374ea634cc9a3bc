"""The Qarnot REST API client: what the tracker reads and the one write it makes.

Speaks the API exactly as the official SDK does (bare-token `Authorization` header, paginated pool
listing, whole-document `PUT` to commit), and turns every failure into one of these
typed errors, each with a short `.reason` and a one-line message that never contains the token:

    ApiError
     +-- AuthError           401 (403 on a read): the token is wrong or revoked
     +-- Forbidden           403 on a write: e.g. a commit to a pool that is not running
     +-- PoolNotFound        404 on a pool (or on a task, or on a pool's figures)
     +-- MalformedResponse   the body is not JSON, or not the shape the API documents
     +-- ApiUnavailable      429/5xx/connection trouble outlasted the retry budget
"""
from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import httpx
import orjson
import tenacity

from policies.scaling import Scaling
from policies.settings import ElasticSettings
from tracker import commits as commit_rules, costs
from tracker.logs import REDACTED
from tracker.parse import FIELDS_READ, BadDocument, parse_pool
from tracker.snapshot import FINISHED, PoolSnapshot, Unreadable

DEFAULT_URL = "https://api.qarnot.com"
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
LIVE_FILTER = {"operator": "NotIn", "field": "State", "value": list(FINISHED)}
SELECTED = [name[0].upper() + name[1:] for name in FIELDS_READ]   # the filters' spelling: "State", "Tags"
ALWAYS_SENT = {"uuid", "state", "instanceCount", "runningInstanceCount", "runningCoreCount",
               "queuedOrRunningTaskInstancesCount"}
SEARCH_LIMIT = 5000


class ApiError(Exception):
    reason = "api_error"
    retry_after: float | None = None    # seconds the API asked us to wait (Retry-After), when it did


class AuthError(ApiError):
    reason = "unauthorized"


class Forbidden(ApiError):
    reason = "forbidden"


class PoolNotFound(ApiError):
    reason = "not_found"


class MalformedResponse(ApiError):
    reason = "malformed"


class ApiUnavailable(ApiError):
    reason = "unavailable"


@dataclass(frozen=True)
class Committed:
    pool: PoolSnapshot          # the pool as read back after the commit
    changed: list[str]          # top-level document fields that differ from before (volatile ones aside)


class _Transient(Exception):
    """A failure worth retrying; `reason` feeds metrics ("503", "429", "connect", "timeout")."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.reason, self.retry_after = reason, retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential back-off with jitter, bounded in attempts and in total time."""
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    give_up_after_seconds: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class QarnotClient:
    """Synchronous client; `transport=` lets tests serve fake responses through the front door."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy = RetryPolicy(),
                 on_retry: Callable[[str], None] | None = None, page_size: int = 1000,
                 sleep: Callable[[float], None] = time.sleep, select_fields: bool = True) -> None:
        if not token:
            raise AuthError("no API token: set QARNOT_CLIENT_TOKEN or the config's token_file")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers={"Authorization": token},
                                  timeout=timeout, transport=transport)
        self._retry, self._on_retry, self._sleep = retry, on_retry, sleep
        self.page_size = page_size
        self.listing_deadline = 10 * timeout    # a whole listing, however many pages
        self._secret = token
        self.server_time: datetime | None = None  # the API's clock, from its last answer
        self.bytes_received = 0                   # answer bytes as they came over the wire, for the metrics
        self.select_fields = select_fields
        self.search_refused: str | None = None    # why live listings page full documents instead of searching

    @classmethod
    def from_env(cls, **overrides) -> "QarnotClient":
        """The SDK's own variables: QARNOT_CLUSTER_URL, QARNOT_CLIENT_TOKEN, QARNOT_CLUSTER_TIMEOUT."""
        kwargs = dict(base_url=os.environ.get("QARNOT_CLUSTER_URL", DEFAULT_URL),
                      token=os.environ.get("QARNOT_CLIENT_TOKEN", ""),
                      timeout=float(os.environ.get("QARNOT_CLUSTER_TIMEOUT", 30)))
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- reads ----------------------------------------------------------------------------------
    def list_pools(self, tags: Sequence[str] = (), *, live_only: bool = False) -> list[PoolSnapshot | Unreadable]:
        """Every pool (`live_only`: every pool not finished), following `nextToken` while `isTruncated`, as
        the SDK's `all_pools` does. A document the tracker cannot read comes back as `Unreadable` in its
        place: one bad pool never hides the others."""
        wanted = _all_of(_tags_filter(tags), LIVE_FILTER if live_only else None)
        if live_only and self.select_fields and not self.search_refused:
            found = self._search_pools(wanted)
            if found is not None:
                return found
        return [_parse(doc) for doc in self._all_pages("/pools/paginate", wanted, "pool")]

    def _search_pools(self, wanted: dict) -> list[PoolSnapshot | Unreadable] | None:
        """The matching pools with only the fields the tracker reads, in one request (`POST /pools/search`
        has no pages). None, and never again for this client, when the answer could be cut short or is
        not what was asked (refused, not a list, a document without its counts): the caller then pages
        full documents. A document missing a count would otherwise read as a pool that lost its slots."""
        body = {"filter": wanted, "select": SELECTED, "maximumResults": SEARCH_LIMIT}
        try:
            found = self._json("POST", "/pools/search", json=body)
        except (AuthError, ApiUnavailable):
            raise
        except ApiError as exc:
            self.search_refused = f"POST /pools/search refused ({exc})"
            return None
        if not isinstance(found, list) or len(found) >= SEARCH_LIMIT:
            self.search_refused = ("POST /pools/search answered no list" if not isinstance(found, list) else
                                   f"over {SEARCH_LIMIT} live pools: one search cannot hold them")
            return None
        if not all(isinstance(doc, dict) and ALWAYS_SENT <= doc.keys() for doc in found):
            self.search_refused = "POST /pools/search left out fields it was asked for"
            return None
        return [_parse(doc) for doc in found]

    def lookup_pool(self, uuid: str) -> PoolSnapshot | Unreadable | None:
        """One pool as `list_pools` would give it; None when the API no longer knows it (404)."""
        try:
            return _parse(self.get_pool_document(uuid))
        except PoolNotFound:
            return None
    def list_tasks(self, filter_: dict | None) -> list[dict]:
        """Every task document matching `filter_` (`POST /tasks/paginate`), unparsed: the caller parses
        each, so one bad task never hides the others."""
        return list(self._all_pages("/tasks/paginate", filter_, "task"))

    def _all_pages(self, path: str, filter_: dict | None, kind: str) -> Iterator:
        """Every document of a paginated listing, page by page, following `nextToken` while `isTruncated`
        (the SDK's loop), within `listing_deadline` however many pages."""
        token, seen_tokens = None, set()
        deadline = time.monotonic() + self.listing_deadline
        while True:
            if time.monotonic() > deadline:
                raise ApiUnavailable(f"listing {kind}s took over {self.listing_deadline:g} s ({len(seen_tokens) + 1} "
                                     "pages): the API keeps paging; check the service, or raise api.timeout_seconds")
            page = self._json("POST", path, json={"filter": filter_, "token": token, "maximumResults": self.page_size})
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise MalformedResponse(f"{kind} page has no 'data' list: the API answered an unexpected shape")
            yield from data
            token = page.get("nextToken")
            if not (page.get("isTruncated") and token):
                return
            if token in seen_tokens:
                raise MalformedResponse(f"{kind} pages loop: the API repeated a page token")
            seen_tokens.add(token)

    def get_task_document(self, uuid: str) -> dict:
        """One task (`GET /tasks/{uuid}`); `PoolNotFound` (the API's 404) when it is gone."""
        doc = self._json("GET", f"/tasks/{uuid}")
        if not isinstance(doc, dict):
            raise MalformedResponse(f"task {uuid}: the API answered {type(doc).__name__}, not an object")
        return doc

    def get_pool_document(self, uuid: str) -> dict:
        doc = self._json("GET", f"/pools/{uuid}")
        if not isinstance(doc, dict):
            raise MalformedResponse(f"pool {uuid}: the API answered {type(doc).__name__}, not an object")
        return doc

    # -- what pools cost and emit, what the account may spend and run ------------------------------
    def pool_credits(self, uuid: str) -> float:
        return self._figures(costs.parse_credits, "GET", f"/credits/v1/pools/{uuid}/credits")

    def pool_carbon(self, uuid: str, comparison_datacenter: str | None = None) -> dict:
        params = {"comparisonDatacenter": comparison_datacenter} if comparison_datacenter else None
        return self._figures(costs.parse_carbon, "GET", f"/carbon/v1/pools/{uuid}/carbon-facts", params=params)

    def account_credits(self) -> float:
        return self._figures(costs.parse_credits, "GET", "/credits/v1/accounts/credits")

    def project_budgets(self, project: str) -> list[dict]:
        return self._figures(costs.parse_budgets, "GET", f"/credits/v1/projects/{project}/budgets",
                             params={"activeOnly": "true"})

    def computing_quotas(self) -> dict:
        return self._figures(costs.parse_quotas, "GET", "/quotas/computing-quotas/user")

    def _figures(self, parse, method: str, path: str, **kwargs):
        try:
            return parse(self._json(method, path, **kwargs))
        except costs.BadFigures as exc:
            raise MalformedResponse(f"{method} {path}: {exc}") from None

    def get_pool(self, uuid: str) -> PoolSnapshot:
        try:
            return parse_pool(self.get_pool_document(uuid))
        except BadDocument as exc:
            raise MalformedResponse(f"unreadable pool document: {exc}") from None

    # -- the one write --------------------------------------------------------------------------
    def commit_elastic(self, uuid: str, settings: ElasticSettings, allow_form_change: bool = False) -> Committed:
        """Give a pool new elastic settings (or its one ManagedTasksQueue policy the same knobs), changing
        nothing else in its document; read back to confirm. `CommitRefused` when that cannot be done safely."""
        return self._commit(uuid, lambda doc: commit_rules.elastic_change(doc, settings, allow_form_change))

    def commit_scaling(self, uuid: str, scaling: Scaling, allow_form_change: bool = False) -> Committed:
        """Give a pool new scaling policies in one write, changing nothing else; read back to confirm."""
        return self._commit(uuid, lambda doc: commit_rules.scaling_change(doc, scaling, allow_form_change))

    def _commit(self, uuid: str, change) -> Committed:
        """Read the document, replace only what `change` replaces, PUT it whole (the SDK's `Pool.commit()`
        sends the whole document; unknown fields go back as read), then read back and say what changed."""
        before = self.get_pool_document(uuid)
        body = change(before)
        part = "scaling" if body.get("scaling") != before.get("scaling") else "elasticProperty"
        self._request("PUT", f"/pools/{uuid}", json=body)
        after = self.get_pool_document(uuid)
        commit_rules.confirm(body, after, part)
        try:
            pool = parse_pool(after)
        except BadDocument as exc:
            raise MalformedResponse(f"unreadable pool document after the commit: {exc}") from None
        return Committed(pool, commit_rules.changed_fields(before, after))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "QarnotClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs):
        response = self._request(method, path, **kwargs)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MalformedResponse(f"{method} {path}: the API answered invalid JSON "
                                    f"({len(response.content)} bytes); retry later or report it") from None

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=(tenacity.stop_after_attempt(self._retry.max_attempts)
                  | tenacity.stop_after_delay(self._retry.give_up_after_seconds)),
            wait=lambda state: self._retry.delay(state.attempt_number, state.outcome.exception().retry_after),
            before_sleep=self._note_retry, sleep=self._sleep, reraise=True)
        try:
            return retrying(self._once, method, path, **kwargs)
        except _Transient as exc:
            raise ApiUnavailable(f"{method} {path}: {exc} (gave up after retries; "
                                 "check QARNOT_CLUSTER_URL and the service status)") from None

    def _note_retry(self, state: tenacity.RetryCallState) -> None:
        if self._on_retry is not None:
            self._on_retry(state.outcome.exception().reason)

    def _once(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise _Transient("timeout", f"no answer from {self.base_url} within the timeout") from None
        except httpx.TransportError as exc:
            raise _Transient("connect", f"cannot reach {self.base_url} ({type(exc).__name__})") from None
        self.server_time = _server_time(response) or self.server_time
        self.bytes_received += response.num_bytes_downloaded
        status = response.status_code
        if status < 400:
            return response
        message = _error_message(response).replace(self._secret, REDACTED)   # some servers echo what they got
        if status in TRANSIENT_STATUSES:
            wait = _retry_after(response)
            if wait is not None and wait > self._retry.max_delay:   # too long to wait inside one poll
                error = ApiUnavailable(f"{method} {path}: HTTP {status}, the API asks to retry in {wait:.0f} s "
                                       "(Retry-After); polls resume after that")
                error.retry_after = wait
                raise error
            raise _Transient(str(status), f"HTTP {status} {message}", wait)
        if status == 401 or (status == 403 and (method == "GET" or path.endswith("/paginate"))):
            raise AuthError(f"HTTP {status}: the API refused the token ({message}); "
                            "set a valid QARNOT_CLIENT_TOKEN")
        if status == 403:   # a write refused: the pool is not running, or the account may not do it
            raise Forbidden(f"{method} {path}: refused by the API ({message})")
        if status == 404:
            raise PoolNotFound(f"{method} {path}: not found ({message})")
        raise ApiError(f"{method} {path}: HTTP {status} {message}")


def _parse(doc: object) -> PoolSnapshot | Unreadable:
    try:
        return parse_pool(doc)
    except BadDocument as exc:
        uuid = doc.get("uuid") if isinstance(doc, dict) else None
        return Unreadable(uuid if isinstance(uuid, str) and 0 < len(uuid) <= 200 else None, str(exc)[:500])


def _all_of(*filters: dict | None) -> dict | None:
    chosen = [f for f in filters if f is not None]
    return None if not chosen else chosen[0] if len(chosen) == 1 else {"operator": "And", "filters": chosen}


def _tags_filter(tags: Sequence[str]) -> dict | None:
    """The SDK's tag filter (`tags` means any of them)."""
    if not tags:
        return None
    if len(tags) == 1:
        return {"operator": "Equal", "field": "Tags", "value": tags[0]}
    return {"operator": "Or", "filters": [
        {"field": "Tags", "value": tag, "operator": "Equal"} for tag in tags]}


def _error_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            return str(body.get("message") or body.get("error") or "")[:200]
    except orjson.JSONDecodeError:
        pass
    return response.text[:200]


def _server_time(response: httpx.Response) -> datetime | None:
    """The server's clock: the emulator's precise `X-Emulator-Time`, else the standard `Date` header."""
    try:
        if "x-emulator-time" in response.headers:
            return datetime.fromtimestamp(float(response.headers["x-emulator-time"]), timezone.utc)
        return parsedate_to_datetime(response.headers["date"]).astimezone(timezone.utc)
    except (KeyError, ValueError, TypeError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
