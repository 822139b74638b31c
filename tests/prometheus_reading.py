"""Reading a worker's Prometheus metrics the way a scraper would."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def samples(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample at ``url``, by name and label set."""
    with urllib.request.urlopen(url, timeout=20) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }
