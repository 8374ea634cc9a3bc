"""Logging: one line per poll and per problem, plain text or JSON, with the token scrubbed from all."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

log = logging.getLogger("pool_tracker")


class Redact(logging.Filter):
    """Defence in depth: whatever a message carries, the token never leaves the process."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and self.secret in record.getMessage():
            record.msg, record.args = record.getMessage().replace(self.secret, "<redacted>"), ()
        for key, value in getattr(record, "fields", {}).items():
            if isinstance(value, str) and self.secret and self.secret in value:
                record.fields[key] = value.replace(self.secret, "<redacted>")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                           "level": record.levelname.lower(), "message": record.getMessage(),
                           **getattr(record, "fields", {})})


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return f"{when} {record.levelname.lower():7} {record.getMessage()}" + (f" {fields}" if fields else "")


def setup(fmt: str = "text", level: str = "INFO", secret: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redact(secret))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def event(level: int, message: str, **fields) -> None:
    log.log(level, message, extra={"fields": fields})
