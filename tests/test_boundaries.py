"""The architecture's boundaries, checked on the source: a pure core, one owner per I/O dependency."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_LIBS = {"httpx", "duckdb", "apscheduler", "prometheus_client", "uvicorn", "starlette"}
OWNERS = {  # dependency -> modules allowed to import it
    "duckdb": {"tracker/store.py"},
    "apscheduler": {"tracker/daemon.py"},
    "prometheus_client": {"tracker/metrics.py"},
}
PURE = [p for p in (ROOT / "policies").glob("*.py")] + [
    ROOT / "tracker" / name for name in ("snapshot.py", "events.py", "derive.py", "parse.py", "commits.py", "costs.py",
                                          "lake_plan.py", "tasks.py")
]
CLOCK_CALLS = {("time", "time"), ("time", "monotonic"), ("datetime", "now"), ("datetime", "utcnow"),
               ("date", "today")}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def all_modules():
    return sorted(p for pkg in ("tracker", "policies") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in PURE if p.exists()], ids=lambda p: p.name)
def test_pure_modules_do_no_io_and_never_read_the_clock(path):
    assert not imported_roots(path) & IO_LIBS, f"{path.name} imports an I/O library"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) not in CLOCK_CALLS, f"{path.name} reads the clock"


@pytest.mark.parametrize("lib", sorted(OWNERS))
def test_each_io_dependency_has_one_owner(lib):
    users = {str(p.relative_to(ROOT)) for p in all_modules() if lib in imported_roots(p)}
    assert users <= OWNERS[lib], f"{lib} imported outside its owner: {sorted(users - OWNERS[lib])}"
