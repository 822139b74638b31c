"""The one way tests wait: poll a condition until it holds, failing with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, timeout: float = 60.0, alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> T:
    """Return ``condition()``'s first truthy answer; fail once ``timeout`` seconds pass, or as soon as ``alive()``
    (a worker or server the condition depends on) turns false."""
    deadline = time.monotonic() + timeout
    while True:
        answer = condition()
        if answer:
            return answer
        if alive is not None:
            assert alive(), f"something the test waits on died before {what}"
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout:.0f}s"
        time.sleep(interval)
