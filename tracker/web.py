"""The daemon's HTTP port: /metrics for Prometheus, /healthz for supervisors, /sql for analysts (read-only),
/recommendations and /apply for operators. Back-tests run in a worker thread so scrapes never wait on them."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tracker.poll import utc_now
from tracker.sql import handle_sql_request


def build_web_app(daemon) -> Starlette:
    def as_of():
        """Advice is as of the last observation, like the advisor's own rounds."""
        return daemon.store.last_observed() or daemon.clock()

    async def index(_):
        return JSONResponse({"endpoints": {"/metrics": "GET Prometheus metrics", "/healthz": "GET health",
                                           "/sql": 'POST {"query": "SELECT ..."}',
                                           "/recommendations": "GET ?pool=UUID&policy=NAME",
                                           "/apply": 'POST {"pool": UUID, "dry_run": true}'}})

    async def metrics(_):
        body, content_type = daemon.metrics.exposition()
        return Response(body, media_type=content_type)

    async def healthz(_):
        healthy, reason = daemon.health.status(utc_now())
        return JSONResponse({"healthy": healthy, "reason": reason}, status_code=200 if healthy else 503)

    async def recommendations(request: Request):
        from tracker.advisor import report

        params = request.query_params
        try:
            rows = await run_in_threadpool(report, daemon.advisor, as_of(), params.get("pool"), params.get("policy"))
        except LookupError as exc:
            return JSONResponse({"error": str(exc).strip("'")}, status_code=404)
        return JSONResponse(rows)

    async def apply(request: Request):
        from tracker.advisor import apply as apply_advice

        try:
            body = await request.json()
            result = await run_in_threadpool(apply_advice, daemon.advisor, str(body["pool"]), as_of(),
                                             bool(body.get("dry_run")))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send JSON {"pool": UUID, "dry_run": true|false}'}, status_code=400)
        except LookupError as exc:
            return JSONResponse({"error": str(exc).strip("'")}, status_code=404)
        return JSONResponse(result)

    async def sql(request: Request):
        status, body = handle_sql_request(daemon.store, await request.body())
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/", index), Route("/metrics", metrics), Route("/healthz", healthz),
                             Route("/sql", sql, methods=["POST"]), Route("/apply", apply, methods=["POST"]),
                             Route("/recommendations", recommendations)])
