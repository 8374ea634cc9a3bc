"""The daemon's HTTP port: /metrics for Prometheus, /healthz for supervisors, /sql for analysts (read-only)."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tracker.poll import utc_now
from tracker.sql import handle_sql_request


def build_web_app(daemon) -> Starlette:
    async def index(_):
        return JSONResponse({"endpoints": {"/metrics": "GET Prometheus metrics", "/healthz": "GET health",
                                           "/sql": 'POST {"query": "SELECT ..."}'}})

    async def metrics(_):
        body, content_type = daemon.metrics.exposition()
        return Response(body, media_type=content_type)

    async def healthz(_):
        healthy, reason = daemon.health.status(utc_now())
        return JSONResponse({"healthy": healthy, "reason": reason}, status_code=200 if healthy else 503)

    async def sql(request: Request):
        status, body = handle_sql_request(daemon.store, await request.body())
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/", index), Route("/metrics", metrics), Route("/healthz", healthz),
                             Route("/sql", sql, methods=["POST"])])
