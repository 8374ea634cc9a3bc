"""Configuration: precedence, and one-line errors that name the key."""
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.config import ConfigError, describe, load_config

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "pool-tracker.toml"


def test_the_shipped_file_is_valid_and_equals_the_defaults():
    assert load_config(DEFAULT_FILE, env={})[0] == load_config(None, env={})[0]


def test_precedence_defaults_file_env_flags(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[poll]\ninterval_seconds = 10\n[http]\nport = 1000\n[store]\npath = 'a.duckdb'\n")
    env = {"POOL_TRACKER_HTTP_PORT": "2000", "POOL_TRACKER_STORE_PATH": "b.duckdb", "QARNOT_CLIENT_TOKEN": "test-token-1"}
    config, token = load_config(file, env=env, overrides={"store.path": "c.duckdb", "poll.jitter_seconds": None})
    assert (config.poll.interval_seconds, config.http.port, str(config.store.path)) == (10, 2000, "c.duckdb")
    assert config.poll.jitter_seconds == 2.0 and token == "test-token-1"


@pytest.mark.parametrize("text,env,needle", [
    ("[poll]\ninterval_seconds = 0\n", {}, "poll.interval_seconds = 0"),
    ("[poll]\ninterval_seconds = 99999\n", {}, "<= 3600"),
    ("[poll]\nintervall = 5\n", {}, "unknown key 'poll.intervall'"),
    ("[http]\nport = 'x'\n", {}, "http.port"),
    ("[log]\nformat = 'xml'\n", {}, "log.format"),
    ("", {"POOL_TRACKER_API_TIMEOUT_SECONDS": "-1"}, "api.timeout_seconds"),
    ("[poll\n", {}, "not valid TOML"),
    ("[api]\ntoken_file = '/nonexistent/token'\n", {}, "api.token_file"),
    ("[api]\ntoken = 'abc123'\n", {}, "api.token is not allowed in a config file"),
    ("[select]\ntags = 'prod'\n", {}, "select.tags"),
    ("", {"QARNOT_CLUSTER_URL": "localhost:99"}, "api.url = 'localhost:99' (from QARNOT_CLUSTER_URL): not a URL"),
    ("", {"POOL_TRACKER_POLL_INTERVAL_SECONDS": "99999"}, "(from POOL_TRACKER_POLL_INTERVAL_SECONDS)"),
    ("", {"POOL_TRACKER_SELECT_TAGS": "[prod"}, "POOL_TRACKER_SELECT_TAGS is not valid JSON"),
    ("", {"POOL_TRACKER_POLL_INTERVALL": "5"}, "unknown key 'poll.intervall' (from POOL_TRACKER_POLL_INTERVALL)"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path, text, env, needle):
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(file, env=env)
    assert needle in str(info.value) and "\n" not in str(info.value) and "abc123" not in str(info.value)


def test_flags_win_and_their_mistakes_say_so():
    with pytest.raises(ConfigError, match=r"poll.interval_seconds = 0 \(from a command-line flag\).*>= 1"):
        load_config(env={"POOL_TRACKER_POLL_INTERVAL_SECONDS": "60"}, overrides={"poll.interval_seconds": 0})


@pytest.mark.parametrize("content,needle", [("", "holds nothing"), ("tok\nen\n", "several lines")])
def test_token_file_must_hold_exactly_the_token(tmp_path, content, needle):
    (tmp_path / "token").write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_config(env={"POOL_TRACKER_API_TOKEN_FILE": str(tmp_path / "token")})


def test_token_file_is_read_and_never_shown(tmp_path):
    (tmp_path / "token").write_text("hunter2-token\n")
    file = tmp_path / "c.toml"
    file.write_text(f"[api]\ntoken_file = '{tmp_path / 'token'}'\n")
    config, token = load_config(file, env={})
    assert token == "hunter2-token" and "hunter2-token" not in describe(config, env={})


def test_cli_reports_config_errors_in_one_line_with_exit_code_2(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[poll]\ninterval_seconds = -5\n")
    out = subprocess.run([sys.executable, "-m", "tracker", "config", "show", "--config", str(file)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "poll.interval_seconds" in out.stderr


@pytest.mark.parametrize("env,match", [({"QARNOT_CLIENT_TOKEN": "t"}, "too short"),
                                       ({"QARNOT_CLIENT_TOKEN": "api-token-123", "POOL_TRACKER_ADMIN_TOKEN": "short"},
                                        "at least 16"),
                                       ({"QARNOT_CLIENT_TOKEN": "same-secret-0123456789",
                                         "POOL_TRACKER_ADMIN_TOKEN": "same-secret-0123456789"}, "is the Qarnot API token")])
def test_tokens_that_would_leak_or_garble_are_refused_in_one_line(env, match):
    from tracker.config import admin_token

    with pytest.raises(ConfigError, match=match) as caught:
        config, token = load_config(env=env)
        admin_token(config, token, env)
    assert "\n" not in str(caught.value)


def test_the_daemon_writes_a_private_admin_token_beside_its_database_that_clients_find(tmp_path):
    from tracker.config import admin_token

    config, token = load_config(env={"QARNOT_CLIENT_TOKEN": "api-token-123"},
                                overrides={"store.path": str(tmp_path / "h.duckdb")})
    assert admin_token(config, token, {}) == ""                      # a client before any daemon: none
    written = admin_token(config, token, {}, create=True)
    path = tmp_path / "h.duckdb.admin-token"
    assert len(written) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert admin_token(config, token, {}) == written == admin_token(config, token, {}, create=True)  # stable
