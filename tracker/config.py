"""Configuration: defaults < TOML file < environment < command-line flags, validated in one place.

Every mistake becomes one line naming the key, what was given and what is allowed. The API token is
kept apart from the config object (which gets printed) and only ever shown redacted.
"""
from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "POOL_TRACKER_"
ADMIN_TOKEN_ENV = "POOL_TRACKER_ADMIN_TOKEN"
MIN_ADMIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """A configuration mistake, as one line naming the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Api(_Section):
    url: str = Field("https://api.qarnot.com", pattern=r"^https?://[^/\s]+")
    token_file: Path | None = None
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    page_size: int = Field(1000, ge=1, le=5000)
    clock: Literal["local", "server"] = "local"   # "server": trust the API's clock (accelerated emulators)


class Poll(_Section):
    interval_seconds: float = Field(30.0, ge=1, le=3600)
    jitter_seconds: float = Field(2.0, ge=0, le=60)
    failure_backoff_max_seconds: float = Field(300.0, ge=1, le=3600)
    full_sweep_seconds: float = Field(900.0, ge=0, le=86400)   # 0: every poll lists every pool
    select_fields: bool = True     # live polls ask only for the fields the tracker reads (POST /pools/search)


class Select(_Section):
    tags: list[str] = []
    labels: dict[str, str] = {}


class Store(_Section):
    path: Path = Path("pool-tracker.duckdb")


class Http(_Section):
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)
    health_max_failure_seconds: float = Field(300.0, ge=1, le=86400)
    admin_port: int | None = Field(None, ge=0, le=65535)   # admin endpoints on their own listener
    admin_token_file: Path | None = None
    allowed_hosts: list[str] = []                 # Host names admin endpoints accept beyond loopback and `host`
    max_body_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024)
    request_timeout_seconds: float = Field(10.0, gt=0, le=600)
    max_connections: int = Field(256, ge=8, le=65536)


class Sql(_Section):
    timeout_seconds: float = Field(30.0, gt=0, le=3600)
    default_rows: int = Field(10_000, ge=1, le=10_000_000)
    max_rows: int = Field(100_000, ge=1, le=10_000_000)
    concurrency: int = Field(2, ge=1, le=64)
    memory_limit: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")
    threads: int = Field(1, ge=1, le=256)


class Costs(_Section):
    enabled: bool = True                       # collect credits, carbon facts, quotas and budgets
    pool_interval_seconds: float = Field(3600.0, ge=60, le=7 * 86400)   # per live pool (and once at its end)
    account_interval_seconds: float = Field(300.0, ge=10, le=86400)     # quotas, budgets, credits left
    run_every_seconds: float = Field(60.0, ge=1, le=3600)               # how often due pools are looked for
    max_pools_per_run: int = Field(500, ge=1, le=100_000)               # spreads 10k pools over many runs
    concurrency: int = Field(4, ge=1, le=64)                            # requests in flight at once
    comparison_datacenter: str | None = None   # carbon facts' comparison data centre (API default if unset)


class Lake(_Section):
    url: str | None = None                     # where the log is published (a path, file://, s3://...); None: off
    tracker_id: str | None = None              # this daemon's name in the lake; None: <host>-<database file name>
    interval_seconds: float = Field(900.0, ge=1, le=86400)
    batch_rows: int = Field(100_000, ge=1, le=10_000_000)   # most rows per Parquet file

    @field_validator("tracker_id")
    @classmethod
    def _safe_partition_name(cls, value: str | None) -> str | None:
        from tracker.lake_plan import TRACKER_ID, TRACKER_ID_RULE

        if value is not None and not TRACKER_ID.match(value):
            raise ValueError(f"use {TRACKER_ID_RULE} (it names a folder in the lake)")
        return value

    @field_validator("url")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("leave it unset to publish nothing, or write a folder path or s3://BUCKET/PREFIX")
        return value


class Tasks(_Section):
    enabled: bool = True                       # record live pools' tasks: real arrivals, waits, run times
    interval_seconds: float = Field(60.0, ge=5, le=86400)               # between runs
    pools_per_request: int = Field(100, ge=1, le=1000)                  # pools named in one listing (`In`)
    sweep_interval_seconds: float = Field(3600.0, ge=60, le=7 * 86400)  # also list ended tasks this often
    max_fetches_per_run: int = Field(500, ge=1, le=100_000)             # ended tasks read one by one per run


class Metrics(_Section):
    pool_labels: list[str] = []     # Qarnot label keys exported on qarnot_pool_labels as label_<key>; ["*"]: all


class Log(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Advisor(_Section):
    enabled: bool = True
    schedule_seconds: float = Field(3600.0, ge=1, le=7 * 86400)
    policies: list[str] = ["search"]
    commit: bool = False                       # commit recommendations through the API (opt-in pools only)
    commit_policy: str = "search"
    allow_form_change: bool = False            # may a commit make a static pool elastic, or move a pool
                                               # between elasticProperty and scaling
    opt_in: str = "pool-tracker-autoscale"     # tag, or label set to "true", that lets the advisor commit
    max_relative_change: float = Field(0.5, gt=0, le=1)
    cooldown_seconds: float = Field(3600.0, ge=0, le=30 * 86400)
    history_seconds: float = Field(7 * 86400.0, ge=3600, le=365 * 86400)
    slo_seconds: float = Field(300.0, gt=0, le=86400)
    slo_label: str = "pool-tracker-slo-seconds"          # per-pool SLO: this label, or a tag NAME=SECONDS
    budget_slot_hours_per_week: float | None = Field(None, gt=0)   # a cap on each pool's weekly cost; None: none
    budget_label: str = "pool-tracker-budget-slot-hours-per-week"   # per-pool budget: label, or tag NAME=HOURS
    holdout_share: float = Field(0.25, ge=0, le=0.9)    # of the history kept aside to score recommendations on
    holdout_max_seconds: float = Field(7 * 86400.0, ge=3600, le=365 * 86400)
    startup_delay_seconds: float = Field(60.0, ge=0, le=3600)

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, names: list[str]) -> list[str]:
        from policies.registry import POLICIES

        unknown = [n for n in names if n not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}")
        return names

    @field_validator("commit_policy")
    @classmethod
    def _known_policy(cls, name: str) -> str:
        cls._known_policies([name])
        return name


class Config(_Section):
    api: Api = Api()
    poll: Poll = Poll()
    select: Select = Select()
    store: Store = Store()
    http: Http = Http()
    sql: Sql = Sql()
    costs: Costs = Costs()
    tasks: Tasks = Tasks()
    metrics: Metrics = Metrics()
    log: Log = Log()
    advisor: Advisor = Advisor()
    lake: Lake = Lake()


def load_config(path: str | Path | None = None, env: dict | None = None, overrides: dict | None = None
                ) -> tuple[Config, str]:
    """The effective config and the API token. `overrides` maps "section.key" to CLI values."""
    env = os.environ if env is None else env
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}; check the --config path") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix the syntax") from None
    if isinstance(data.get("api"), dict) and "token" in data["api"]:
        raise ConfigError("config error: api.token is not allowed in a config file (config files get printed "
                          "and shared); set QARNOT_CLIENT_TOKEN or api.token_file instead")
    flags = {k: (v, "a command-line flag") for k, v in (overrides or {}).items() if v is not None}
    sources: dict[str, str] = {}   # "section.key" -> where a value beyond the file came from, for errors
    for dotted, (value, origin) in {**_from_env(env), **flags}.items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"config key {section!r} must be a [section] table")
        data[section][key], sources[dotted] = value, origin
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, sources)) from None
    return config, _token(config, env)


def _from_env(env) -> dict[str, tuple[object, str]]:
    """{"section.key": (value, variable name)} from QARNOT_* and POOL_TRACKER_<SECTION>_<KEY>."""
    out = {}
    for name, key in (("QARNOT_CLUSTER_URL", "api.url"), ("QARNOT_CLUSTER_TIMEOUT", "api.timeout_seconds")):
        if env.get(name):
            out[key] = (env[name], name)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and "_" in name[len(ENV_PREFIX):] and name != ADMIN_TOKEN_ENV:
            section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
            if value[:1] in "[{":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{name} is not valid JSON ({exc.msg} at character {exc.pos}); "
                                      """write a list like '["a", "b"]' or a table like '{"k": "v"}'""") from None
            out[f"{section}.{key}"] = (value, name)
    return out


MIN_TOKEN_LENGTH = 8   # shorter "tokens" are typos, and redacting them would garble every log line


def _token(config: Config, env) -> str:
    if env.get("QARNOT_CLIENT_TOKEN"):
        token = env["QARNOT_CLIENT_TOKEN"].strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"QARNOT_CLIENT_TOKEN holds {len(token)} character(s): too short for an API token; "
                              "copy the whole token from your Qarnot account")
        return token
    if config.api.token_file is not None:
        try:
            token = config.api.token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"api.token_file {config.api.token_file}: {getattr(exc, 'strerror', None) or exc}; "
                              "point it at a readable file holding only the token") from None
        if not token or "\n" in token:
            raise ConfigError(f"api.token_file {config.api.token_file} must hold exactly one line, the token "
                              f"(it holds {'nothing' if not token else 'several lines'})")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"api.token_file {config.api.token_file} holds {len(token)} character(s): too short "
                              "for an API token; copy the whole token from your Qarnot account")
        return token
    return ""


def admin_token_path(config: Config) -> Path:
    """Where the admin token lives: `http.admin_token_file`, else a file beside the database."""
    return config.http.admin_token_file or Path(f"{config.store.path}.admin-token")


def admin_token(config: Config, qarnot_token: str = "", env=None, *, create: bool = False) -> str:
    """The bearer token of the admin endpoints (/sql, /recommendations, /apply).

    From POOL_TRACKER_ADMIN_TOKEN, else the token file. The daemon (`create=True`) writes a random one
    there (mode 0600) when neither exists, so the CLI on the same machine and config finds it; clients
    get "" when there is none. Never the Qarnot token: one leaked secret must not give away the other.
    """
    env = os.environ if env is None else env
    path = admin_token_path(config)
    if env.get(ADMIN_TOKEN_ENV):
        token, origin = env[ADMIN_TOKEN_ENV].strip(), ADMIN_TOKEN_ENV
    elif path.exists() or config.http.admin_token_file is not None:
        try:
            token, origin = path.read_text().strip(), f"admin token file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"admin token file {path}: {getattr(exc, 'strerror', None) or exc}; point "
                              "http.admin_token_file at a readable file holding only the token") from None
    elif create:
        token = secrets.token_urlsafe(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(token + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write the admin token to {path} ({exc.strerror}); set "
                              f"http.admin_token_file or {ADMIN_TOKEN_ENV}") from None
        return token
    else:
        return ""
    if len(token) < MIN_ADMIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(f"the admin token from {origin} must be one word of at least {MIN_ADMIN_TOKEN_LENGTH} "
                          "characters; generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if qarnot_token and secrets.compare_digest(token, qarnot_token):
        raise ConfigError(f"the admin token from {origin} is the Qarnot API token; use a different secret")
    return token


def token_source(config: Config, env=None) -> str:
    env = os.environ if env is None else env
    if env.get("QARNOT_CLIENT_TOKEN"):
        return "<redacted: from QARNOT_CLIENT_TOKEN>"
    if config.api.token_file is not None:
        return f"<redacted: from {config.api.token_file}>"
    return "<missing: set QARNOT_CLIENT_TOKEN or api.token_file>"


def _one_line(exc: ValidationError, sources: dict[str, str] | None = None) -> str:
    """The first problem as one line: the key, the value given, what is allowed, and where it came from."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"])
    origin = next((o for k, o in (sources or {}).items() if k == key or key.startswith(k + ".")
                   or k.startswith(key + ".")), None)
    where = f" (from {origin})" if origin else ""
    if err["type"] == "extra_forbidden":
        return f"config error: unknown key {key!r}{where}; see config/pool-tracker.toml for the keys there are"
    if err["type"] == "string_pattern_mismatch":
        return f"config error: {key} = {err.get('input')!r}{where}: not a URL; write it like https://api.qarnot.com"
    ctx = err.get("ctx") or {}
    allowed = str(ctx["expected"]) if "expected" in ctx else \
        ", ".join(f"{_BOUNDS[k]} {v}" for k, v in ctx.items() if k in _BOUNDS)
    return (f"config error: {key} = {err.get('input')!r}{where}: {err['msg'].lower()}"
            + (f" (allowed: {allowed})" if allowed else ""))


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def describe(config: Config, env=None) -> str:
    """The effective config as valid TOML that loads back to the same config (`pool-tracker config show`).

    The API token is never shown: where it comes from is a comment (a `token` key would be refused on
    reading, rightly). Keys without a value (TOML has no null) are listed in a comment.
    """
    import tomli_w

    data = config.model_dump(mode="json")
    unset = [f"{section}.{key}" for section, values in data.items() for key, value in values.items() if value is None]
    data = {section: {k: v for k, v in values.items() if v is not None} for section, values in data.items()}
    header = ["# pool-tracker effective configuration (`pool-tracker config show`); load it back with --config.",
              f"# API token: {token_source(config, env)}"]
    if unset:
        header.append(f"# unset (defaults apply): {', '.join(unset)}")
    return "\n".join(header) + "\n\n" + tomli_w.dumps(data)
