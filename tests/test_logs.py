"""Log lines: ours and the standard library's alike; a reconfiguration reaches every logger."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from reelforge.logs import configure_logging, get_logger
from reelforge.settings import LogFormat, LogLevel

log = get_logger("reelforge.test")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logging.getLogger().handlers.clear()
    structlog.contextvars.clear_contextvars()


def _json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_our_lines_and_library_lines_carry_the_same_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogLevel.INFO, LogFormat.JSON)
    structlog.contextvars.bind_contextvars(request_id="r-1")

    log.info("ours", size=3)
    logging.getLogger("somelibrary").warning("theirs %s", "formatted")

    ours, theirs = _json_lines(capsys)
    assert ours["event"] == "ours"
    assert ours["size"] == 3
    assert theirs["event"] == "theirs formatted"
    expected = ((ours, "reelforge.test", "info"), (theirs, "somelibrary", "warning"))
    for line, name, level in expected:
        assert line["logger"] == name
        assert line["level"] == level
        assert line["request_id"] == "r-1"
        assert isinstance(line["timestamp"], str)


def test_an_exception_is_rendered_into_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogLevel.INFO, LogFormat.JSON)
    try:
        raise ValueError("the cause")
    except ValueError:
        log.exception("it failed")

    (line,) = _json_lines(capsys)
    assert line["level"] == "error"
    assert "ValueError: the cause" in str(line["exception"])


def test_a_logger_already_used_follows_a_later_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogLevel.INFO, LogFormat.JSON)
    log.info("seen at info")
    assert [line["event"] for line in _json_lines(capsys)] == ["seen at info"]

    configure_logging(LogLevel.WARNING, LogFormat.CONSOLE)
    log.info("hidden at warning")
    log.warning("shown as console text")

    err = capsys.readouterr().err
    assert "hidden at warning" not in err
    assert "shown as console text" in err
    assert not err.lstrip().startswith("{")
