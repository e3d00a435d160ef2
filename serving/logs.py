"""Structured JSON logs with request ids.

Every line is one JSON object with time, level, logger, message and the request id of the
request being served. Nothing here logs request bodies: remittances and denials carry PHI, so
log lines carry ids, counts, versions and timings only.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with ``extra=`` are kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


SERVICE_LOGGERS = ("denial_triage", "uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str = "INFO") -> None:
    """Send the service's and uvicorn's logs through the JSON formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in SERVICE_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # uvicorn's access lines quote the raw path, which holds denial ids; the service logs
    # each request itself under its route's template instead.
    access = logging.getLogger("uvicorn.access")
    access.setLevel(max(access.level, logging.WARNING))


logger = logging.getLogger("denial_triage.service")
