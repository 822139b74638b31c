"""How the worker logs: Faust's plain lines, or one JSON object per line for log shippers.

Lines about one event carry its id, type, topic, partition and offset as fields (``extra``), so
in JSON every line about an event can be found by its id.
"""

from __future__ import annotations

from typing import Any

from streams.settings import MonitoringSettings

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(monitoring: MonitoringSettings) -> dict[str, Any] | None:
    """A dictConfig for Faust's worker when JSON lines are asked for; None keeps Faust's own."""
    if not monitoring.json_logs:
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {
            "()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": monitoring.log_level, "handlers": ["stderr"]},
    }
