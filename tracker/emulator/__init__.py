"""A faithful Qarnot API emulator on 127.0.0.1, for the demo, integration tests and back-testing.

    with Emulator.running(pools=50, seed=1, speed=60.0, token="t0k") as emu:
        emu.url, emu.token, emu.cluster   # cluster: ground truth, pools, sim clock
        emu.faults.set(Faults(server_errors=0.2))

The account (`emu.account`): prices, carbon constants, projects and budgets, computing quotas, e.g.
`Emulator(quotas=Quotas(flex=Limit(max_cores=64, max_instances=16)), prices=Prices(pue=1.1))`; see
`tracker.emulator.billing`, `ledger` and `quotas`.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

from tracker.emulator.account import Account
from tracker.emulator.app import build_app
from tracker.emulator.billing import DEFAULT_PRICES, Prices
from tracker.emulator.cluster import Cluster, SimClock
from tracker.emulator.faults import FaultPlan, Faults
from tracker.emulator.ledger import Budget, Project
from tracker.emulator.quotas import Limit, Quotas
from tracker.serve import ThreadedServer

__all__ = ["Emulator", "Faults", "Cluster", "SimClock", "Prices", "Quotas", "Limit", "Project", "Budget"]


class _HideDeliberateDrops(logging.Filter):
    """The dropped-connection fault hangs up on purpose; uvicorn need not report it as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())


class Emulator:
    """The emulated cluster served by uvicorn in a background thread."""

    def __init__(self, *, pools: int = 20, seed: int = 0, speed: float = 1.0, token: str = "emulator-token",
                 host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None,
                 startup_delay: float = 60.0, delete_delay: float = 60.0,
                 clock: Callable[[], float] | None = None, prices: Prices = DEFAULT_PRICES,
                 quotas: Quotas | None = None, projects: tuple[Project, ...] | None = None,
                 initial_credits: float = 50_000.0, finished: int = 0) -> None:
        self.token = token
        self.clock = clock or SimClock(speed)
        self.cluster = Cluster(self.clock, startup_delay=startup_delay, delete_delay=delete_delay)
        self.account = Account(self.cluster, prices=prices, projects=projects, initial_credits=initial_credits,
                               quotas=quotas)
        self.cluster.account = self.account     # before populating: seeded pools live under the quotas too
        self.cluster.populate(pools, seed, self.clock())
        self.cluster.add_finished(finished, seed, self.clock())
        self.account.ledger.spread(self.cluster.pools.values())
        self.faults = FaultPlan(faults)
        self._server = ThreadedServer(build_app(self.cluster, token, self.faults), host, port, date_header=False)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> "Emulator":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C / SIGTERM (uvicorn handles the signals)."""
        self._server.run_in_foreground()

    @classmethod
    @contextlib.contextmanager
    def running(cls, **kwargs) -> Iterator["Emulator"]:
        emulator = cls(**kwargs).start()
        try:
            yield emulator
        finally:
            emulator.stop()
