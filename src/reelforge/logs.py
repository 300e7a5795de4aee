"""Structured logging: structlog for our code and the standard library's loggers alike."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from reelforge.settings import LogFormat, LogLevel

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _NamedWriter(structlog.WriteLogger):
    """structlog's line writer on the current stderr, named for `add_logger_name`."""

    def __init__(self, name: str) -> None:
        super().__init__(sys.stderr)
        self.name = name


def _named_writer(*args: Any) -> _NamedWriter:
    return _NamedWriter(str(args[0]) if args else "")


def _renderer(fmt: LogFormat) -> structlog.typing.Processor:
    use_json = fmt == LogFormat.JSON or (fmt == LogFormat.AUTO and not sys.stderr.isatty())
    if use_json:
        return structlog.processors.JSONRenderer()
    # Rich's tracebacks render every frame's locals: seconds per logged exception, on the loop.
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


def configure_logging(level: LogLevel = LogLevel.INFO, fmt: LogFormat = LogFormat.AUTO) -> None:
    """Render structlog's and the standard library's lines alike, one JSON (or console) line
    each on stderr.

    Every line carries the context bound with structlog.contextvars (the request id among it),
    including lines from libraries that log through the standard library. Our own lines are
    rendered by structlog directly, not handed through `logging`: that hand-over (a LogRecord
    made, copied and formatted) cost most of an access log line (bench/api.md).
    """
    renderer = _renderer(fmt)
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=_named_writer,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Not cached: a later configure_logging (a CLI command's, a test's) applies to every
        # logger, including those already used.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A lazy logger: it renders with whatever `configure_logging` set last."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
