"""``streams topics create`` and ``streams lag``: the topics the service needs, and how far behind it is."""

from __future__ import annotations

import argparse

from confluent_kafka import KafkaException

from streams.admin import ensure_topics
from streams.kafka.lag import GroupReader
from streams.cli_types import positive_int
from streams.errors import BrokerUnavailableError
from streams.settings import load_settings
from streams.topics import every_topic_config, relay_group_id, tier_topic_names, watched_topic_names


def topics_create(args: argparse.Namespace) -> int:
    settings = load_settings()
    partitions = args.partitions or settings.topics.partitions
    replication = args.replication_factor or settings.topics.replication_factor
    configs = every_topic_config(settings.kafka.group_id, settings.topics, settings.retry)
    created = set(ensure_topics(settings.kafka, configs, partitions, replication))
    for name, config in configs.items():
        state = f"created ({partitions} partitions, replication {replication})" if name in created else "exists"
        compacted = " compacted" if config.get("cleanup.policy") == "compact" else ""
        print(f"{name:40} {state}{compacted}")
    return 0


def lag(args: argparse.Namespace) -> int:
    settings = load_settings()
    group = args.group or settings.kafka.group_id
    if args.relays:
        group, topics = relay_group_id(group), list(tier_topic_names(settings.topics, settings.retry))
    elif args.all:
        topics = list(every_topic_config(group, settings.topics, settings.retry))
    else:
        topics = watched_topic_names(settings.topics)
    reader = GroupReader(settings.kafka)
    try:
        behind = reader.lag(group, topics)
    except KafkaException as exc:
        raise BrokerUnavailableError(f"cannot read the lag of group {group!r} at {settings.kafka.brokers}: {exc.args[0]}") from None
    finally:
        reader.close()
    for topic in topics:
        print(f"{topic:40} {behind[topic]:>12,}" if topic in behind else f"{topic:40} {'no topic':>12}")
    print(f"{'total':40} {sum(behind.values()):>12,}")
    return 0


def add_topic_commands(commands: argparse._SubParsersAction) -> None:
    topics = commands.add_parser("topics", help="the service's topics").add_subparsers(dest="action", required=True)
    create = topics.add_parser("create", help="create every topic the service uses (changelogs compacted)")
    create.add_argument("--partitions", type=positive_int, help="default: topics.partitions")
    create.add_argument("--replication-factor", type=positive_int, help="default: topics.replication_factor")
    create.set_defaults(run=topics_create)

    lag_command = commands.add_parser("lag", help="events the consumer group has not processed, per topic")
    lag_command.add_argument("--group", help="consumer group (default: kafka.group_id)")
    which = lag_command.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="also the delay tiers and changelogs")
    which.add_argument("--relays", action="store_true",
                       help="delayed and retried events the group's relays have not sent on, per delay tier")
    lag_command.set_defaults(run=lag)
