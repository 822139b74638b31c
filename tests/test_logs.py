"""The worker's log lines: plain into a file or pipe, Faust's coloured ones on a terminal, JSON when asked."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator

import pytest

from streams.logs import logging_config
from streams.settings import MonitoringSettings

FIELDS = {"event_id": "e-1", "topic": "emails", "partition": 0, "offset": 7}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back as it was: dictConfig replaces its handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_lines_into_a_file_are_plain_and_keep_faust_shape(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    config = logging_config(MonitoringSettings(), stream=out)
    assert config is not None
    logging.config.dictConfig(config)
    logging.getLogger("streams.agent_loop").warning("retrying event id=%s in %.2fs", "e-1", 1.0, extra=FIELDS)
    line = out.getvalue()
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[\d+\] \[WARNING\] retrying event id=e-1 in 1.00s \n", line,
    ), line
    assert "\x1b[" not in line


def test_a_terminal_keeps_faust_coloured_lines() -> None:
    assert logging_config(MonitoringSettings(), stream=Terminal()) is None


def test_json_lines_carry_the_event_fields(root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    config = logging_config(MonitoringSettings(json_logs=True), stream=Terminal())
    assert config is not None
    logging.config.dictConfig(config)
    logging.getLogger("streams.agent_loop").error("dead-lettered event id=%s", "e-1", extra=FIELDS)
    line = json.loads(capsys.readouterr().err)
    assert line["level"] == "ERROR" and line["message"] == "dead-lettered event id=e-1"
    assert {name: line[name] for name in FIELDS} == FIELDS
