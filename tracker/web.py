"""The daemon's HTTP surface, fit for a Prometheus host.

Open: `/metrics` (Prometheus), `/healthz` (supervisors) and the read-only status page (`/` to browsers,
its data at `/status/fleet` and `/status/pools/{uuid}`: fixed queries on the analyst connection). Admin: `/sql`, `/recommendations`, `/apply`,
which read the history and can change pools, so every admin request must come with the admin bearer
token, name a local Host (no DNS rebinding), carry no foreign Origin (no web page can drive them), send
JSON when it posts, and fit in `http.max_body_bytes` read within `http.request_timeout_seconds`. Admin
work runs in worker threads, analyst queries a few at a time, so scrapes and health never wait on it.
"""
from __future__ import annotations

import asyncio
import hmac
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tracker.poll import utc_now
from tracker import status_page
from tracker.sql import handle_sql_request
from tracker.store import QueryRefused

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


def host_name(value: str) -> str:
    """`[::1]:9108` -> `::1`, `localhost:9108` -> `localhost`: the name without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class AdminGuard:
    """Everything an admin request must satisfy before any work or any record is done for it."""

    def __init__(self, token: str, allowed_hosts, max_body_bytes: int, timeout_seconds: float) -> None:
        self.token = token.encode()
        self.hosts = frozenset(h.lower() for h in allowed_hosts) | LOOPBACK_HOSTS
        self.max_body, self.timeout = max_body_bytes, timeout_seconds

    def check(self, request: Request) -> None:
        if host_name(request.headers.get("host", "")) not in self.hosts:
            raise Refused(403, "Host not allowed: call the daemon by a local name, or add the name to "
                               "http.allowed_hosts")
        origin = request.headers.get("origin")
        if origin is not None and (urlsplit(origin).hostname or "") not in self.hosts:
            raise Refused(403, "cross-origin requests are refused")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            raise Refused(401, "admin endpoints need 'Authorization: Bearer <admin token>' (see http.admin_token_file)",
                          {"WWW-Authenticate": 'Bearer realm="pool-tracker"'})
        if request.method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                raise Refused(415, "send the body as Content-Type: application/json")

    async def body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise Refused(413, f"body over {self.max_body} bytes (http.max_body_bytes)")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_body:
                        raise Refused(413, f"body over {self.max_body} bytes (http.max_body_bytes)")
                    chunks.append(chunk)
        except TimeoutError:
            raise Refused(408, f"body not received within {self.timeout:g} s (http.request_timeout_seconds)") from None
        return b"".join(chunks)


def _admin(guard: AdminGuard, handler):
    async def guarded(request: Request):
        try:
            guard.check(request)
            body = await guard.body(request) if request.method == "POST" else b""
            return await handler(request, body)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)
    return guarded


def build_web_apps(daemon) -> tuple[Starlette, Starlette | None]:
    """The main port's app and, when `http.admin_port` is set, the admin listener's own app."""
    http, sql_config = daemon.config.http, daemon.config.sql
    guard = AdminGuard(daemon.admin_token, [http.host, *http.allowed_hosts], http.max_body_bytes,
                       http.request_timeout_seconds)

    def as_of():
        """Advice is as of the last observation, like the advisor's own rounds."""
        return daemon.store.last_observed() or daemon.clock()

    async def metrics(_):
        body, content_type = daemon.metrics.exposition()
        return Response(body, media_type=content_type)

    async def healthz(_):
        healthy, reason = daemon.health.status(utc_now())
        lake = {"lake": daemon.lake_status} if getattr(daemon, "lake_status", None) else {}
        return JSONResponse({"healthy": healthy, "reason": reason, **lake}, status_code=200 if healthy else 503)

    async def recommendations(request: Request, _body: bytes):
        from tracker.advisor import report

        params = request.query_params
        try:
            rows = await run_in_threadpool(report, daemon.advisor, as_of(), params.get("pool"), params.get("policy"))
        except LookupError as exc:
            return JSONResponse({"error": str(exc).strip("'")}, status_code=404)
        return JSONResponse(rows)

    async def apply(_request: Request, body: bytes):
        import orjson

        from tracker.advisor import apply as apply_advice

        try:
            request = orjson.loads(body)
            pool, dry_run = request["pool"], request.get("dry_run", False)
            if not isinstance(pool, str) or not 0 < len(pool) <= 200 or not isinstance(dry_run, bool):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": 'send JSON {"pool": UUID, "dry_run": true|false}'}, status_code=400)
        try:
            result = await run_in_threadpool(apply_advice, daemon.advisor, pool, as_of(), dry_run)
        except LookupError as exc:
            return JSONResponse({"error": str(exc).strip("'")}, status_code=404)
        return JSONResponse(result)

    async def sql(_request: Request, body: bytes):
        if not daemon.sql_slots.acquire(blocking=False):
            return JSONResponse({"error": f"{sql_config.concurrency} analyst queries are already running "
                                          "(sql.concurrency); retry shortly"}, status_code=503,
                                headers={"Retry-After": "1"})
        try:
            status, answer = await run_in_threadpool(
                handle_sql_request, daemon.store, body, default_rows=sql_config.default_rows,
                max_rows=sql_config.max_rows, timeout_seconds=sql_config.timeout_seconds)
        finally:
            daemon.sql_slots.release()
        return Response(answer, status_code=status, media_type="application/json")

    admin_routes = [Route("/sql", _admin(guard, sql), methods=["POST"]),
                    Route("/recommendations", _admin(guard, recommendations)),
                    Route("/apply", _admin(guard, apply), methods=["POST"])]
    admin_doc = {"/sql": 'POST {"query": "SELECT ...", "limit": N}', "/recommendations": "GET ?pool=UUID&policy=NAME",
                 "/apply": 'POST {"pool": UUID, "dry_run": true}'}
    separate = http.admin_port is not None

    async def index(request: Request):
        if "text/html" in request.headers.get("accept", ""):     # a browser: the read-only status page
            return HTMLResponse(status_page.HTML)
        return JSONResponse({"endpoints": {"/metrics": "GET Prometheus metrics", "/healthz": "GET health",
                                           "/status/fleet": "GET the fleet table (read-only)",
                                           "/status/pools/{uuid}": "GET ?hours=H a pool's timeline and recommendations",
                                           **({} if separate else admin_doc)},
                             "admin": "Authorization: Bearer <admin token> "
                                      + ("on the admin port" if separate else "for /sql, /recommendations, /apply")})

    async def read_only(work, *args):
        """A status-page query: on the analyst connection, within sql.concurrency, never waiting for a slot."""
        if not daemon.sql_slots.acquire(blocking=False):
            return JSONResponse({"error": "busy; retry shortly"}, status_code=503, headers={"Retry-After": "1"})
        try:
            return JSONResponse(await run_in_threadpool(work, daemon.store, *args, sql_config.timeout_seconds))
        except QueryRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        finally:
            daemon.sql_slots.release()

    async def status_fleet(_):
        return await read_only(status_page.fleet_rows, daemon.config.advisor.commit_policy)

    async def status_pool(request: Request):
        try:
            hours = float(request.query_params.get("hours", 24))
            if not 0 < hours <= daemon.config.advisor.history_seconds / 3600:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "hours: a number of hours within advisor.history_seconds"}, status_code=400)
        return await read_only(status_page.pool_timeline, request.path_params["uuid"][:200], hours)

    public = [Route("/", index), Route("/metrics", metrics), Route("/healthz", healthz),
              Route("/status/fleet", status_fleet), Route("/status/pools/{uuid}", status_pool)]
    if separate:
        return Starlette(routes=public), Starlette(routes=admin_routes)
    return Starlette(routes=public + admin_routes), None
