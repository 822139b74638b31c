"""Prometheus gauges read when metrics are scraped: consumer lag per topic and per state, events waiting in the
delay tiers, and keys per state.

Lag comes from the broker (streams.kafka.lag), so it is the group's, the same on every
worker. What waits in a delay tier is the relays' group's lag on it: the relays commit once a
second up to their oldest event not yet sent, so it counts the events they hold in memory too.
State sizes are the keys this worker holds, from RocksDB's own estimate: counting a million
keys on every scrape would cost more than the scrape is worth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import faust
from confluent_kafka import KafkaException
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.state.remote import EngineClient
from streams.kafka.lag import GroupReader
from tables.health import state_lag

logger = logging.getLogger(__name__)


def lag_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("streams_consumer_lag", "Events the consumer group has not processed yet.", labels=["topic"])


def state_lag_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("streams_state_lag", "Events of a state's source the state engine's group has not folded yet.",
                             labels=["state"])


def relay_pending_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "streams_relay_pending", "Delayed and retried events in a delay tier that the relays have not sent on yet.",
        labels=["tier"],
    )


def keys_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("streams_table_keys", "Keys of each table held by this worker.", labels=["table"])


class StreamsCollector(Collector):
    """Reads lag and table sizes when Prometheus scrapes, never in between."""

    def __init__(
        self, app: faust.App, reader: Callable[[], GroupReader], topics: Callable[[], list[str]],
        engine: EngineClient, relays: tuple[str, list[str]],
    ) -> None:
        self.app = app
        self.reader = reader
        self.topics = topics
        self.engine = engine
        self.relay_group, self.tiers = relays

    def describe(self) -> Iterator[Metric]:
        """The metric names alone, so registering does not ask the broker."""
        yield lag_family()
        yield state_lag_family()
        yield relay_pending_family()
        yield keys_family()

    def collect(self) -> Iterator[Metric]:
        yield self.lag_of(lag_family(), self.app.conf.id, self.topics(), "consumer lag")
        lags = state_lag_family()
        for state in self.engine.states:
            try:
                lags.add_metric([state.name], state_lag(self.reader(), self.engine, state))
            except KafkaException as exc:
                logger.warning("lag of state %s not measured: %s", state.name, exc.args[0])
        yield lags
        yield self.lag_of(relay_pending_family(), self.relay_group, self.tiers, "events waiting in the delay tiers")
        keys = keys_family()
        for state in self.engine.states:
            keys.add_metric([state.name], self.engine.estimated_keys(state))
        yield keys

    def lag_of(self, family: GaugeMetricFamily, group: str, topics: list[str], what: str) -> GaugeMetricFamily:
        """``family`` with ``group``'s lag on each of ``topics``; empty, with a warning, if the broker cannot say."""
        try:
            for topic, events in self.reader().lag(group, topics).items():
                family.add_metric([topic], events)
        except KafkaException as exc:
            logger.warning("%s not measured: %s", what, exc.args[0])
        return family


class WorkerMetrics:
    """What /metrics serves: this process's registry and the engine process's metrics as one, each series the sum
    of both processes' counts (the earlier of their creation times), whichever process counted it."""

    def __init__(self, engine: EngineClient) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for family in [*REGISTRY.collect(), *self.engine.metrics()]:
            merged = families.setdefault(family.name, family)
            if merged is family:
                continue
            series = {(sample.name, tuple(sorted(sample.labels.items()))): n for n, sample in enumerate(merged.samples)}
            for sample in family.samples:
                at = series.get((sample.name, tuple(sorted(sample.labels.items()))))
                if at is None:
                    merged.samples.append(sample)
                    continue
                kept = merged.samples[at]
                value = min(kept.value, sample.value) if sample.name.endswith("_created") else kept.value + sample.value
                merged.samples[at] = kept._replace(value=value)
        yield from families.values()


def register_collector(
    app: faust.App, reader: Callable[[], GroupReader], topics: Callable[[], list[str]], engine: EngineClient,
    relays: tuple[str, list[str]],
) -> None:
    """``relays``: the relays' consumer group and the delay-tier topics it reads."""
    REGISTRY.register(StreamsCollector(app, reader, topics, engine, relays))
