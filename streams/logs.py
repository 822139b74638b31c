"""How the worker logs: Faust's coloured lines on a terminal, plain lines into a file or pipe, or one
JSON object per line for log shippers.

Faust colours its lines through colorlog even when they go to a file, where the colour is stripped
again: that took about a tenth of a millisecond a line, a failing event logs three or four, and a
worker's output is a file or a pipe in every deployment. Plain lines have the same shape.

Lines about one event carry its id, type, topic, partition and offset as fields (``extra``), so
in JSON every line about an event can be found by its id.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from streams.settings import MonitoringSettings

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: Faust's line, uncoloured: "[time] [pid] [LEVEL] message".
PLAIN_LINE = "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s %(extra)s"


def logging_config(monitoring: MonitoringSettings, stream: IO[str] = sys.stdout) -> dict[str, Any] | None:
    """A dictConfig for Faust's worker; None keeps Faust's own coloured lines, for a terminal."""
    if monitoring.json_logs:
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "lines"}
    elif stream.isatty():
        return None
    else:
        formatter = {"()": "mode.utils.logging.DefaultFormatter", "format": PLAIN_LINE}
        handler = {"class": "logging.StreamHandler", "formatter": "lines", "stream": stream}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": formatter},
        "handlers": {"out": handler},
        "root": {"level": monitoring.log_level, "handlers": ["out"]},
    }
