"""The emulator's HTTP face: the Qarnot API paths the SDK and the tracker call, plus `/_emulator/*` controls.

Endpoints are `async` so they all run on the server's one event loop, one request at a time.
"""
from __future__ import annotations

import asyncio
from email.utils import formatdate

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from policies.scaling import InvalidScaling
from policies.settings import ElasticSettings, InvalidSettings
from tracker.emulator.account_api import account_routes, user_info_extras
from tracker.emulator.cluster import NOT_RUNNING, SCHEDULING_TYPES, Cluster
from tracker.emulator.documents import pool_document, selected, task_document
from tracker.emulator.faults import FaultPlan, Faults
from tracker.emulator.filters import compile_filter, named_pools, task_fields
from tracker.emulator.ledger import BudgetExceeded
from tracker.emulator.pages import page
from tracker.emulator.sizing import parse_scaling, parse_settings

MAX_PAGE = 1000
TASK_INTERPRETED = ("name", "poolUuid", "instanceCount", "uuid", "state")   # the rest of a task is served back
INTERPRETED = ("name", "profile", "tags", "labels", "shortname", "elasticProperty", "instanceCount",
               "multiSlotsSettings", "schedulingType", "scaling")


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def error(status: int, message: str) -> Response:
    return json_response({"message": message}, status)


class NotRunning(Exception):
    """An operation (commit, close) on a pool that is closing, closed, failed or being deleted: 403."""


def refuse_unless_running(pool, action: str) -> None:
    if pool.state in NOT_RUNNING:
        raise NotRunning(f"Cannot {action} pool {pool.uuid}: the pool is not running (state {pool.state})")


def scheduling_type(body: dict) -> str:
    wanted = body.get("schedulingType") or "Flex"
    known = next((t for t in SCHEDULING_TYPES if t.lower() == str(wanted).lower()), None)
    if known is None:
        raise ValueError(f"unknown schedulingType {wanted!r}; expected one of {', '.join(SCHEDULING_TYPES)}")
    return known


def slots_per_node(body: dict) -> int:
    value = (body.get("multiSlotsSettings") or {}).get("slotsPerNode")
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"multiSlotsSettings.slotsPerNode must be a positive integer, got {value!r}")
    return value


def build_app(cluster: Cluster, token: str, faults: FaultPlan) -> Starlette:
    account = cluster.account   # costs, budgets, quotas (tracker.emulator.account), when the emulator has one
    async def body_of(request: Request):
        raw = await request.body()
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ValueError("request body is not JSON") from None

    async def settings(_):
        return json_response({"storage": None})

    async def info(_):
        return json_response({"email": "emulator@127.0.0.1", "maxPool": -1, "poolCount": len(cluster.pools),
                              "taskCount": len(cluster.tasks), "runningCoreCount": 0,
                              **(user_info_extras(account) if account is not None else {})})

    async def create_pool(request):
        body = await body_of(request)
        per_node, scheduling = slots_per_node(body), scheduling_type(body)
        slots = int(body.get("instanceCount") or 1) * per_node   # a static pool's instances are nodes
        static = ElasticSettings(slots, slots, 0, 0, 1.0, 90, is_elastic=False)
        scaling = parse_scaling(body.get("scaling"))   # scaling wins: elasticProperty is then only stored
        elastic = body.get("elasticProperty") or {}
        chosen = parse_settings(elastic, static) if elastic.get("isElastic") else static
        extra = {k: v for k, v in body.items() if k not in INTERPRETED}   # kept verbatim
        project = account.ledger.project_of_new_pool(body.get("projectUuid")) if account is not None else None
        pool = cluster.create_pool(body.get("name") or "pool", body.get("profile") or "docker-batch", chosen,
                                   tags=body.get("tags") or [], labels=body.get("labels") or {},
                                   shortname=body.get("shortname"), extra=extra, slots_per_node=per_node,
                                   scheduling_type=scheduling, scaling=scaling)
        pool.project_uuid = project
        return json_response({"uuid": pool.uuid})

    async def paginate(request):
        body = await body_of(request)
        limit = min(int(body.get("maximumResults") or 50), MAX_PAGE)
        if limit < 1:
            return error(400, "maximumResults must be at least 1")
        wanted = compile_filter(body.get("filter"))   # UnsupportedFilter (a ValueError): 400 naming it
        now = cluster.clock()
        with cluster.lock:
            chosen, next_token = page([p for p in cluster.all_pools(now) if wanted(p)], body.get("token"), limit)
            data = [pool_document(p, now) for p in chosen]
        return json_response({"data": data, "token": body.get("token"), "nextToken": next_token,
                              "isTruncated": next_token is not None})

    async def search(request):   # POST /pools/search: filter and `select`, one answer, no pages
        body = await body_of(request)
        limit = body.get("maximumResults")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return error(400, "maximumResults must be a positive integer")
        wanted, fields = compile_filter(body.get("filter")), body.get("select")
        now = cluster.clock()
        with cluster.lock:
            docs = [pool_document(p, now) for p in cluster.all_pools(now) if wanted(p)][:limit]
        return json_response(docs if not fields else [selected(doc, fields) for doc in docs])

    def find(request):
        return cluster.require(request.path_params["uuid"])

    async def pool_endpoint(request):
        pool = find(request)
        if request.method == "GET":
            return json_response(pool_document(pool, cluster.clock()))
        if request.method == "DELETE":
            cluster.delete_pool(pool.uuid)
            return Response(status_code=200)
        body = await body_of(request)  # PUT: the SDK's commit(), whole document
        refuse_unless_running(pool, "update")
        scaling = parse_scaling(body.get("scaling"))   # both validated before anything changes
        settings = parse_settings(body.get("elasticProperty"), pool.settings)
        if scaling is not None and scaling != pool.scaling:   # resending the same document changes nothing
            cluster.set_settings(pool.uuid, scaling)
        # Legacy settings are kept (served back) but size the pool only when it has no scaling document;
        # a static pool's size (instanceCount) cannot change after submission.
        if settings.is_elastic:
            cluster.set_settings(pool.uuid, settings)
        return Response(status_code=200)

    async def scaling_endpoint(request):   # PUT /pools/{uuid}/scaling, the C# SDK's call: the scaling object
        pool = find(request)
        body = await body_of(request)
        refuse_unless_running(pool, "update the scaling of")
        scaling = parse_scaling(body)
        if scaling is None:
            raise InvalidScaling("scaling", "must be an object, got null")
        if scaling != pool.scaling:
            cluster.set_settings(pool.uuid, scaling)
        return Response(status_code=200)

    async def close_pool(request):
        pool = find(request)
        refuse_unless_running(pool, "close")
        cluster.close_pool(pool.uuid)
        return Response(status_code=200)

    async def submit_task(request):
        body = await body_of(request)
        pool = cluster.pool(body.get("poolUuid") or "")
        if pool is None:
            return error(404, "the task's poolUuid names no pool")
        constants = {c.get("key"): c.get("value") for c in body.get("constants") or ()}
        duration = float(constants.get("EMULATOR_DURATION_SECONDS", 300))
        count = int(body.get("instanceCount") or 1)
        if count < 1 or duration < 0:
            return error(400, "instanceCount must be at least 1 and EMULATOR_DURATION_SECONDS at least 0")
        extra = {k: v for k, v in body.items() if k not in TASK_INTERPRETED}
        task = cluster.submit_task(pool.uuid, count, duration, name=body.get("name"), extra=extra)
        return json_response({"uuid": task.uuid})

    async def get_task(request):
        now = cluster.clock()
        with cluster.lock:
            cluster.all_pools(now)   # the pools' models decide when instances start and end
            task = cluster.tasks.get(request.path_params["uuid"], now)
            return json_response(task_document(task, now)) if task else error(404, "task not found")

    async def paginate_tasks(request):
        body = await body_of(request)
        limit = min(int(body.get("maximumResults") or 50), MAX_PAGE)
        if limit < 1:
            return error(400, "maximumResults must be at least 1")
        now = cluster.clock()
        wanted = compile_filter(body.get("filter"), task_fields(now))
        summary = request.url.path.endswith("/summaries/paginate")
        with cluster.lock:
            cluster.all_pools(now)
            listed = cluster.tasks.visible(now, named_pools(body.get("filter")))
            chosen, next_token = page([t for t in listed if wanted(t)], body.get("token"), limit)
            data = [task_document(t, now, summary) for t in chosen]
        return json_response({"data": data, "token": body.get("token"), "nextToken": next_token,
                              "isTruncated": next_token is not None})

    async def ground_truth(request):
        since = int(request.query_params.get("since", 0))
        with cluster.lock:
            records = list(cluster.ground_truth)[since:]
        return json_response([[t.at, t.pool, t.kind, t.old, t.new] for t in records])

    async def control_faults(request):
        if request.method == "POST":
            try:
                faults.set(Faults.from_dict(await body_of(request)))
            except (TypeError, ValueError) as exc:
                return error(400, str(exc))
        return json_response(faults.faults.to_dict())

    async def state(_):
        return json_response({"now": cluster.clock(), "pools": len(cluster.pools)})

    routes = [
        Route("/settings", settings), Route("/info", info),
        Route("/pools", create_pool, methods=["POST"]),
        Route("/pools/paginate", paginate, methods=["POST"]),
        Route("/pools/summaries/paginate", paginate, methods=["POST"]),
        Route("/pools/search", search, methods=["POST"]),
        Route("/pools/{uuid}", pool_endpoint, methods=["GET", "PUT", "DELETE"]),
        Route("/pools/{uuid}/close", close_pool, methods=["POST"]),
        Route("/pools/{uuid}/scaling", scaling_endpoint, methods=["PUT"]),
        Route("/tasks", submit_task, methods=["POST"]),
        Route("/tasks/paginate", paginate_tasks, methods=["POST"]),
        Route("/tasks/summaries/paginate", paginate_tasks, methods=["POST"]),
        Route("/tasks/{uuid}", get_task),
        Route("/_emulator/ground-truth", ground_truth),
        Route("/_emulator/faults", control_faults, methods=["GET", "POST"]),
        Route("/_emulator/state", state),
        *(account_routes(cluster, account, json_response) if account is not None else ()),
    ]
    app = Starlette(routes=routes, exception_handlers={
        LookupError: lambda request, exc: error(404, str(exc).strip("'")),
        ValueError: lambda request, exc: error(400, str(exc)),
        NotRunning: lambda request, exc: error(403, str(exc)),
        InvalidScaling: lambda request, exc: error(400, f"invalid scaling: {exc.field}: {exc.problem}"),
        BudgetExceeded: lambda request, exc: error(402, str(exc)),
        InvalidSettings: lambda request, exc: error(400, f"invalid elasticProperty: {exc}"),
    })
    return FaultyAuthApp(app, token, faults, cluster.clock)


class FaultyAuthApp:
    """ASGI wrapper: checks the token, then injects the planned fault, on the Qarnot paths only."""

    def __init__(self, app, token: str, faults: FaultPlan, clock) -> None:
        self.app, self.token, self.faults, self.clock = app, token, faults, clock

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = _with_sim_time(send, self.clock())
        if scope["path"].startswith("/_emulator/"):
            return await self.app(scope, receive, send)
        fault = self.faults.next(is_page=scope["path"].endswith("/paginate"))
        latency = self.faults.faults.latency_seconds
        if latency:
            await asyncio.sleep(latency)
        headers = dict(scope["headers"])
        if fault == "unauthorized" or headers.get(b"authorization", b"").decode() != self.token:
            return await error(401, "Unauthorized: invalid or revoked token")(scope, receive, send)
        if fault in ("500", "502", "503"):
            return await error(int(fault), "emulated server error")(scope, receive, send)
        if fault == "429":
            retry = str(self.faults.faults.retry_after_seconds)
            return await json_response({"message": "Too many requests"}, 429,
                                       {"Retry-After": retry})(scope, receive, send)
        if fault == "drop":  # announce a body, send a sliver of it, hang up
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b'{"data": [', "more_body": True})
            return
        if fault in ("malformed", "truncated"):
            return await self.app(scope, receive, _mangling(send, fault))
        return await self.app(scope, receive, send)


def _with_sim_time(send, now: float):
    """Stamp answers with the simulated time: `Date`, and `X-Emulator-Time` to the microsecond."""
    stamp = [(b"date", formatdate(now, usegmt=True).encode()), (b"x-emulator-time", repr(now).encode())]

    async def stamped(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *stamp]}
        await send(message)

    return stamped


def _mangling(send, fault: str):
    """Wrap `send` so a successful answer's body arrives broken but with a consistent length."""
    state = {}

    async def mangled(message):
        if message["type"] == "http.response.start":
            state["start"] = message
            return
        body = message.get("body", b"")
        start = state.pop("start", None)
        if start is not None:
            if start["status"] == 200:
                body = body[: len(body) // 2] if fault == "truncated" else b"<html>Bad Gateway</html>"
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
        await send({**message, "body": body})

    return mangled
