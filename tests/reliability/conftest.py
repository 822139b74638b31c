"""Fault tests: each records its figures (sent, processed, lost, duplicated), printed at the end of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES: dict[str, dict[str, int]] = {}


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[dict[str, int]], None]:
    def record(figures: dict[str, int]) -> None:
        FIGURES[request.node.name] = figures
        for name, value in figures.items():
            request.node.user_properties.append((name, value))
    return record


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault tests run last, so the load they leave behind does not skew the timing of the others."""
    items.sort(key=lambda item: item.get_closest_marker("reliability") is not None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault tests: events sent, processed, lost, duplicated")
    for test, figures in FIGURES.items():
        terminalreporter.write_line(f"{test}: " + ", ".join(f"{name} {value:,}" for name, value in figures.items()))
