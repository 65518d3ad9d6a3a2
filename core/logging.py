"""Structured logging: JSON lines in production, short readable lines at a terminal.

JSON is the default wherever output is collected (not a terminal) and wherever
`MANTLE_LOG_FORMAT=json` says so. At a terminal, a person reads what `mantle up` started, where,
and what went wrong; the libraries' routine chatter (each migration step, each task received and
succeeded, the scheduler's every tick) is left out there, and warnings and errors still show in
full with their tracebacks. Some chatter is dropped in every format because it says nothing:
Presidio's "Loaded recognizer" per analyzer and kombu's "No hostname was supplied" for a broker
that is a folder.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

Format = Literal["json", "console"]

# Routine INFO lines a terminal does without; JSON logs keep them (tests and operators read them).
_CONSOLE_QUIET = ("alembic", "celery.worker.strategy", "celery.app.trace", "celery.beat",
                  "celery.worker.consumer", "uvicorn.error", "mcp.server.streamable_http_manager")
# Dropped everywhere: a line per analyzer built, with no information for anyone.
_ALWAYS_QUIET = ("uvicorn.access", "presidio-analyzer",
                 # The Twilio SDK logs every request with its headers at INFO: ten lines per message.
                 "twilio.http_client")


class _DropMessage(logging.Filter):
    """Drop records whose message starts with a known, meaningless text."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the meaningless one."""
        return not str(record.msg).startswith(self.prefix)


def _mantle_unnamed(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """At a terminal, Mantle's own lines need no logger name: they are the product talking."""
    if str(event_dict.get("logger", "")).startswith("mantle."):
        del event_dict["logger"]
    return event_dict


def choose_format(configured: str, explicitly_set: bool) -> Format:
    """The format to log in: the configured one when set explicitly, else console at a terminal
    (stderr is a TTY) and JSON everywhere else."""
    if explicitly_set:
        return "console" if configured == "console" else "json"
    return "console" if sys.stderr.isatty() else "json"


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib and structlog records (and Python warnings) through one structured renderer."""
    console = fmt == "console"
    renderer: structlog.types.Processor
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), pad_event_to=0, pad_level=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    # A JSON line needs the traceback as text; without this it would carry only exc_info's repr.
    before_render: list[structlog.types.Processor] = [_mantle_unnamed] if console \
        else [structlog.processors.format_exc_info]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False) if console
        else structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *before_render, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Python warnings (a library's DeprecationWarning, Celery's SecurityWarning) become log lines
    # in the same format instead of raw multi-line text on stderr.
    logging.captureWarnings(True)
    for noisy in (*_ALWAYS_QUIET, *(_CONSOLE_QUIET if console else ())):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    hostname = logging.getLogger("kombu.connection")
    if not any(isinstance(f, _DropMessage) for f in hostname.filters):
        # The filesystem broker has no host; kombu warns about it on every connection.
        hostname.addFilter(_DropMessage("No hostname was supplied"))
