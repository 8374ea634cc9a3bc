"""Serve an ASGI app with uvicorn on a background thread (the emulator and the daemon's HTTP port)."""
from __future__ import annotations

import threading
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


def prompt_protocol(header_timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, but a connection whose request line and headers have not all arrived
    within `header_timeout` seconds is closed: a slow client cannot hold a connection (and a file
    descriptor) forever. uvicorn has an idle keep-alive timeout, not this one."""

    class PromptH11(H11Protocol):
        _deadline = None
        _waiting_after = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            self._arm()                      # first: completing may start a pipelined request at once
            super().on_response_complete()

        def handle_events(self) -> None:
            super().handle_events()
            if self._deadline is not None and self.cycle is not self._waiting_after:   # a request has begun
                self._deadline.cancel()
                self._deadline = None

        def connection_lost(self, exc) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._waiting_after = self.cycle
            self._deadline = self.loop.call_later(header_timeout, self._too_slow)

        def _too_slow(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

    return PromptH11


class ThreadedServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, header_timeout: float | None = None,
                 **config) -> None:
        self.host, self.port = host, port
        if header_timeout is not None:
            config["http"] = prompt_protocol(header_timeout)
        # log_config=None: uvicorn must not install its own handlers (which stop propagation), so its
        # records reach the one redacting handler that tracker.logs puts on the root logger.
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     access_log=False, lifespan="off", log_config=None, **config))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread = threading.Thread(target=self._server.run, name=f"http-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"cannot listen on {self.host}:{self.port} (port in use?): choose another port")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def run_in_foreground(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
