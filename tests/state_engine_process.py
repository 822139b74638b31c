"""A signup-counting state engine in a process of its own, until SIGTERM: a worker the tests can stop and resume.

``python -m tests.state_engine_process BOOTSTRAP GROUP_ID USER_EVENTS STORE COMMIT_INTERVAL SESSION_TIMEOUT``
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from streams.settings import load_settings
from tests.test_state_engine import signup_engine


def main(bootstrap: str, group_id: str, user_events: str, store: str, interval: str, session: str) -> None:
    settings = load_settings(kafka={"brokers": bootstrap, "group_id": group_id}, topics={"user_events": user_events})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine = signup_engine(settings, Path(store), commit_interval=float(interval), session_timeout=float(session))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine.start()
    stop.wait()
    engine.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
