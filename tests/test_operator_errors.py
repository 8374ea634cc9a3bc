"""Operator mistakes end in one line naming the flag or path (exit 2), before any work is done; and
`config show` prints TOML that loads back to the same configuration."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.config import describe, load_config

ROOT = Path(__file__).resolve().parent.parent
TRACE = str(ROOT / "benchmarks" / "traces" / "bursty.csv")


def cli(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_TRACKER_", "QARNOT_"))}
    return subprocess.run([sys.executable, "-m", "tracker", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    path = tmp_path_factory.mktemp("bin") / "trace.csv"
    path.write_bytes(bytes(range(256)) * 20)
    return path


@pytest.mark.parametrize("args,needles", [
    (["backtest", "--trace", TRACE, "--plot", "/nonexistent/dir/x.png"], ["--plot", "/nonexistent/dir"]),
    (["export", "--parquet", "/proc/pq", "--db", "/nonexistent/h.duckdb"], ["--parquet", "/proc/pq"]),
    (["backtest", "--trace", "BINARY"], ["is not a text file"]),
    (["demo", "--speed", "0"], ["--speed"]),
    (["demo", "--speed", "-5"], ["--speed"]),
    (["emulator", "--speed", "-1"], ["--speed"]),
    (["backtest", "--trace", TRACE, "--slo", "-5"], ["--slo"]),
    (["backtest", "--trace", TRACE, "--cores-per-slot", "0"], ["--cores-per-slot"]),
    (["backtest", "--trace", TRACE, "--startup-delay", "-1"], ["--startup-delay"]),
    (["pools", "--every", "0", "--url", ""], ["--every"]),
    (["export"], ["--parquet"]),
])
def test_nonsense_is_one_line_naming_the_flag_or_path(args, needles, binary):
    out = cli(*[str(binary) if a == "BINARY" else a for a in args])
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("pool-tracker: "), out.stderr
    assert all(n in out.stderr for n in needles), out.stderr


def test_config_show_is_toml_that_loads_back_to_the_same_config(tmp_path):
    (tmp_path / "token").write_text("api-token-123456\n")
    env = {"POOL_TRACKER_SELECT_LABELS": '{"team": "render", "cost.center": "42"}',
           "POOL_TRACKER_SELECT_TAGS": '["prod", "gpu"]', "POOL_TRACKER_API_TOKEN_FILE": str(tmp_path / "token"),
           "POOL_TRACKER_HTTP_ADMIN_PORT": "9109", "POOL_TRACKER_METRICS_POOL_LABELS": '["team"]'}
    config, _ = load_config(env=env)
    text = describe(config, env=env)
    (tmp_path / "shown.toml").write_text(text)
    again, token = load_config(tmp_path / "shown.toml", env={})
    assert again == config and token == "api-token-123456"
    assert "api-token-123456" not in text and "# API token: <redacted: from" in text
    assert "http.admin_token_file" in text            # unset keys are named, in a comment


def test_config_show_output_is_accepted_by_config_show(tmp_path):
    shown = cli("config", "show")
    assert shown.returncode == 0, shown.stderr
    (tmp_path / "my.toml").write_text(shown.stdout)
    again = cli("config", "show", "--config", str(tmp_path / "my.toml"))
    assert again.returncode == 0 and again.stdout == shown.stdout, again.stderr


def test_help_lists_every_command_whole_and_the_new_flags():
    commands = cli("--help").stdout.split("Commands:")[1]
    assert "pools " in commands and "..." not in commands
    assert "--watch" in cli("pools", "--help").stdout
    for command in (["sql"], ["export"], ["recommend"], ["apply"], ["backtest"], ["pools"]):
        text = cli(*command, "--help").stdout
        assert "--config" in text and "--url" in text and "--db" in text, command
