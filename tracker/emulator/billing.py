"""What an emulated pool costs and emits, from its simulated slot time (pure functions, no state).

Qarnot publishes no price list nor its carbon method; the emulator states one explicit model, every
figure configurable through `Prices`:

- euros = billed slot-seconds / 3600 x price per slot-hour of the pool's `schedulingType`. Billed
  slot-seconds are the model's `slot_seconds`: the integral of ready + starting slots ("as soon as a
  server is running in a pool, it is counted as billed execution time").
- IT energy (Wh) = core-seconds x `wh_per_core_second`; core-seconds are the integral of the running
  cores (running nodes x cores per node), the pool's `executionTime`.
- total energy = IT energy x `pue`; reused heat = total energy x `heat_reuse_share`.
- Qarnot's footprint (gCO2eq) = total energy (kWh) x `grid_g_per_kwh`.
- The comparison data centre (`comparisonDatacenter`, default `default_datacenter`) runs the same IT
  energy at its own PUE and grid intensity; its heat is wasted.
- saved (compute) = data centre footprint - Qarnot footprint; saved (heat) = reused heat (kWh) x
  `heating_g_per_kwh` (the heating the reused heat displaced); saved (compute + heat) = their sum;
  saved percent = saved (compute + heat) / (data centre footprint + displaced heating) x 100.
- PUE = total / IT; ERE = (total - reused) / IT = PUE x (1 - heat share); ERF = reused / total =
  heat share; WUE = `wue` litres per kWh of IT energy (a site constant).
"""
from __future__ import annotations

from dataclasses import dataclass, field

HOUR = 3600.0

DEFAULT_PRICES_PER_SLOT_HOUR = {"Flex": 0.10, "Reserved": 0.16, "OnDemand": 0.20}   # euros
DEFAULT_DATACENTERS = {   # name -> (PUE, grid gCO2eq per kWh)
    "average-datacenter-france": (1.55, 52.0),
    "average-datacenter-europe": (1.6, 250.0),
    "average-datacenter-world": (1.58, 475.0),
}


@dataclass(frozen=True)
class Prices:
    """The emulator's price, energy, heat and carbon constants (documented defaults)."""
    per_slot_hour: dict = field(default_factory=lambda: dict(DEFAULT_PRICES_PER_SLOT_HOUR))
    wh_per_core_second: float = 10.0 / HOUR     # 10 W per running core
    pue: float = 1.05
    heat_reuse_share: float = 0.9
    wue: float = 0.0                            # litres of water per kWh: Qarnot's heaters use none
    grid_g_per_kwh: float = 52.0                # French grid, gCO2eq per kWh
    heating_g_per_kwh: float = 227.0            # a gas boiler, gCO2eq per kWh of heat
    datacenters: dict = field(default_factory=lambda: dict(DEFAULT_DATACENTERS))
    default_datacenter: str = "average-datacenter-france"

    def __post_init__(self) -> None:
        problems = [f"price for {kind} must be >= 0" for kind, price in self.per_slot_hour.items() if price < 0]
        if not 0 <= self.heat_reuse_share <= 1:
            problems.append(f"heat_reuse_share must be in [0, 1], got {self.heat_reuse_share}")
        if self.pue < 1 or self.wh_per_core_second < 0:
            problems.append("pue must be >= 1 and wh_per_core_second >= 0")
        if self.default_datacenter not in self.datacenters:
            problems.append(f"default_datacenter {self.default_datacenter!r} is not in datacenters")
        if problems:
            raise ValueError("; ".join(problems))

    def price(self, scheduling_type: str) -> float:
        return float(self.per_slot_hour.get(scheduling_type, self.per_slot_hour.get("Flex", 0.0)))


DEFAULT_PRICES = Prices()


def euros(slot_seconds: float, scheduling_type: str, prices: Prices = DEFAULT_PRICES) -> float:
    return slot_seconds / HOUR * prices.price(scheduling_type)


def it_energy_wh(core_seconds: float, prices: Prices = DEFAULT_PRICES) -> float:
    return core_seconds * prices.wh_per_core_second


class UnknownDatacenter(ValueError):
    """A `comparisonDatacenter` the emulator does not know (answered 400, naming the known ones)."""


def carbon_facts(core_seconds: float, prices: Prices = DEFAULT_PRICES, datacenter: str | None = None) -> dict:
    """The carbon-facts answer, keys exactly as the API sends them (snake_case, `_Wh`, `PUE` ...)."""
    name = datacenter or prices.default_datacenter
    if name not in prices.datacenters:
        raise UnknownDatacenter(f"unknown comparisonDatacenter {name!r}; known: {', '.join(sorted(prices.datacenters))}")
    dc_pue, dc_intensity = prices.datacenters[name]
    it = it_energy_wh(core_seconds, prices)
    total = it * prices.pue
    reused = total * prices.heat_reuse_share
    ours = total / 1000 * prices.grid_g_per_kwh
    theirs = it * dc_pue / 1000 * dc_intensity
    saved_heat = reused / 1000 * prices.heating_g_per_kwh
    saved_compute = theirs - ours
    baseline = theirs + saved_heat
    return {
        "total_consumed_energy_Wh": total,
        "total_energy_it_Wh": it,
        "total_reused_energy_Wh": reused,
        "qarnot_carbon_footprint": ours,
        "equivalent_datacenter_name": name,
        "equivalent_DC_carbon_footprint": theirs,
        "saved_carbon_footprint_compute": saved_compute,
        "saved_carbon_footprint_heat": saved_heat,
        "saved_carbon_footprint_compute_heat": saved_compute + saved_heat,
        "saved_carbon_footprint_percent": 100 * (saved_compute + saved_heat) / baseline if baseline else 0.0,
        "PUE": prices.pue,
        "ERE": prices.pue * (1 - prices.heat_reuse_share),
        "ERF": prices.heat_reuse_share,
        "WUE": prices.wue,
    }


def integrate_truth(records, pool_id: str, at: float) -> tuple[float, float]:
    """(billed slot-seconds, core-seconds) of one pool up to `at`, from the ground-truth changes.

    `records` are `Truth`s or `[at, pool, kind, old, new]` rows (each pool's in time order); "ready" and "starting" give
    the billed slots, "cores" the running cores. Exact at any instant, past ones included.
    """
    ready = starting = cores = 0
    slot_seconds = core_seconds = 0.0
    since = None
    for record in records:
        if hasattr(record, "kind"):   # a Truth, or a row of /_emulator/ground-truth
            when, pool, kind, new = record.at, record.pool, record.kind, record.new
        else:
            when, pool, kind, new = record[0], record[1], record[2], record[4]
        if pool != pool_id or kind not in ("ready", "starting", "cores", "state"):
            continue
        if when > at:
            break
        if since is not None:
            slot_seconds += (ready + starting) * (when - since)
            core_seconds += cores * (when - since)
        since = when
        if kind == "ready":
            ready = new
        elif kind == "starting":
            starting = new
        elif kind == "cores":
            cores = new
    if since is not None and at > since:
        slot_seconds += (ready + starting) * (at - since)
        core_seconds += cores * (at - since)
    return slot_seconds, core_seconds
