"""Where client commands (`sql`, `pools`, `recommend`, `apply`, `backtest --pool`, `export`) find the
daemon and its history: the same config file, `POOL_TRACKER_*` environment and flags the daemon reads.

The daemon's admin URL comes from `http.host` and `http.admin_port` (else `http.port`), a wildcard bind
address (0.0.0.0, ::) being reached on loopback; `--url` overrides it and `--url ''` skips the daemon.
The admin token comes from POOL_TRACKER_ADMIN_TOKEN, `http.admin_token_file`, or the file the daemon
wrote beside its database. When no daemon answers, the commands read `store.path` directly. Every
failure is one line naming the URL and the file that were tried.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from tracker.config import Config, admin_token
from tracker.store import Store, StoreError

WILDCARD_HOSTS = {"0.0.0.0", "::", "", "[::]"}


class DaemonError(Exception):
    """What answered at the URL refused the request, or is not a pool-tracker daemon; one line saying which."""


@dataclass(frozen=True)
class Target:
    url: str | None          # the daemon's admin endpoints; None: read the file only
    db: Path                 # the history file, when no daemon answers
    admin_token: str = ""
    url_source: str = "--url"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}


def daemon_url(config: Config) -> str | None:
    """The URL the daemon of this config serves its admin endpoints at (None for port 0: unknowable)."""
    host = config.http.host.strip()
    port = config.http.admin_port if config.http.admin_port is not None else config.http.port
    if port == 0:
        return None
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def resolve(config: Config, url: str | None, env=None) -> Target:
    """The daemon and file a client command should use. `url`: the --url flag (None: from the config)."""
    if url is None:
        resolved, source = daemon_url(config), "http.host/http.port"
    else:
        resolved, source = (url.strip().rstrip("/") or None), "--url"
        if resolved is not None and not resolved.lower().startswith(("http://", "https://")):
            raise DaemonError(f"--url {url!r} is not an http:// or https:// URL; write it like http://127.0.0.1:9108 "
                              "(or --url '' to read the file only)")
    return Target(resolved, Path(config.store.path), admin_token(config, env=env), source)


def ask(target: Target, method: str, path: str, *, timeout: float = 600, **kwargs) -> tuple[object | None, str]:
    """(the daemon's JSON answer, "") or (None, why no daemon answered) when none listens at the URL."""
    if target.url is None:
        return None, "" if target.url_source == "--url" else "no daemon URL to ask (http.port = 0)"
    try:
        answer = httpx.request(method, f"{target.url}{path}", timeout=timeout, headers=target.headers(), **kwargs)
    except httpx.TransportError as exc:
        return None, f"no daemon answered at {target.url} ({_transport_reason(exc)})"
    return daemon_answer(answer, target.url), ""


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {str(exc)[:80]}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def daemon_answer(answer: httpx.Response, url: str) -> object:
    """The JSON a pool-tracker daemon sent, or one line saying what answered instead."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if answer.status_code == 401 and error:
        raise DaemonError(f"{url} refused the admin token ({error}); run with the daemon's --config, or set "
                          "POOL_TRACKER_ADMIN_TOKEN or http.admin_token_file")
    if isinstance(error, str) and answer.status_code >= 400:
        raise DaemonError(f"{url}: {error}")
    if answer.status_code != 200 or body is None or not isinstance(body, (dict, list)):
        raise DaemonError(f"{url} answered HTTP {answer.status_code}, but not as a pool-tracker daemon does; "
                          "point --url (or --config, http.port) at the daemon, or --url '' to read the file")
    return body


def expect(body: object, url: str, keys: tuple[str, ...] = (), kind: type = dict):
    """`body` if it has the shape a pool-tracker daemon sends, else a one-line DaemonError."""
    if not isinstance(body, kind) or (keys and not all(k in body for k in keys)):
        raise DaemonError(f"{url} answered JSON, but not as a pool-tracker daemon does; point --url (or --config, "
                          "http.port) at the daemon, or --url '' to read the file")
    return body


def open_store(target: Target, why_no_daemon: str, **kwargs) -> Store:
    """The history file, read-only, or one line naming both the URL and the file that were tried."""
    before = f"{why_no_daemon}, and " if why_no_daemon else ""
    if not target.db.exists():
        raise StoreError(f"{before}{target.db} does not exist; start the daemon, or point --config, --db or "
                         "--url at its history")
    try:
        return Store(target.db, **{"read_only": True, **kwargs})
    except StoreError as exc:
        if "in use" in str(exc):
            raise StoreError(f"{before}{target.db} is held by another process{_pid(str(exc))} (a daemon listening "
                             "elsewhere?): give that daemon's --config, or --url http://HOST:PORT") from None
        raise StoreError(f"{before}{exc}") from None


def _pid(message: str) -> str:
    import re

    found = re.search(r"\(PID (\d+)\)", message)
    return f" (PID {found.group(1)})" if found else ""
