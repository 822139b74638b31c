"""The pipelines bench.compare measures the streams worker against, each run as a process of its own.

Each writes its rate to a result file once it has counted every event; bench.peer_pipelines reads it.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_rate(result: Path, events: int, seconds: float) -> None:
    result.write_text(json.dumps({"events": events, "seconds": seconds, "events_per_s": events / seconds}))


def read_rate(result: Path) -> float:
    return json.loads(result.read_text())["events_per_s"]
