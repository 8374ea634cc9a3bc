"""Logging: one line per poll and per problem, plain text or JSON, with the token scrubbed from all.

`setup()` puts one handler on the root logger, so library records (uvicorn, apscheduler, httpx) come out
in the same one-line format and pass the same redaction as ours.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

log = logging.getLogger("pool_tracker")
REDACTED = "<redacted>"


class Redact(logging.Filter):
    """Defence in depth: whatever a record carries (message, fields, exception), the token never leaves."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def scrub(self, value):
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        text = value if isinstance(value, str) else str(value)
        return text.replace(self.secret, REDACTED) if self.secret else text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), ()
        fields = {k: self.scrub(v) for k, v in getattr(record, "fields", {}).items()}
        if record.exc_info and record.exc_info[1] is not None:   # a traceback would break the one-line rule
            exc = record.exc_info[1]
            fields["error"] = self.scrub(f"{type(exc).__name__}: {exc}".splitlines()[0])
            record.exc_info, record.exc_text = None, None
        if record.name != log.name and not record.name.startswith(log.name + "."):
            fields = {"source": record.name, **fields}
        record.fields = fields
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                           "level": record.levelname.lower(), "message": record.getMessage(),
                           **getattr(record, "fields", {})}, default=str)


class TextFormatter(logging.Formatter):
    """`time level message key=value ...`, values quoted when they hold spaces (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = " ".join(f"{k}={_logfmt(v)}" for k, v in getattr(record, "fields", {}).items())
        message = " ".join(record.getMessage().split())      # never more than one line
        return f"{when} {record.levelname.lower():7} {message}" + (f" {fields}" if fields else "")


def _logfmt(value) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


def setup(fmt: str = "text", level: str = "INFO", secret: str = "") -> logging.Handler:
    """Our records at `level`, every library's at WARNING and above, all through one redacting handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redact(secret))
    handler.pool_tracker = True
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "pool_tracker", False)] + [handler]
    root.setLevel(logging.WARNING)
    log.handlers.clear()
    log.setLevel(level)
    log.propagate = True
    return handler


def event(level: int, message: str, **fields) -> None:
    log.log(level, message, extra={"fields": fields})
