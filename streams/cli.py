"""The ``streams`` command: the local broker and registry, topics, lag, health, producing events, dead letters, and the demo.

Errors the user can fix come out as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from streams.devkafka import LocalBroker, LocalSchemaRegistry
from streams.cli_types import positive_int
from streams.dlt_command import add_dlt_commands
from streams.errors import StreamsError
from streams.health_command import add_health_command
from streams.produce_command import add_produce_command
from streams.topics_command import add_topic_commands

DEFAULT_HOME = Path(os.environ.get("STREAMS_HOME", ".streams"))


def broker_from(args: argparse.Namespace) -> LocalBroker:
    return LocalBroker(args.data_dir, port=args.port, controller_port=args.controller_port)


def kafka_start(args: argparse.Namespace) -> int:
    broker = broker_from(args)
    bootstrap = broker.start(timeout=args.timeout)
    print(bootstrap)
    print(f"log: {broker.log_file}", file=sys.stderr)
    return 0


def kafka_stop(args: argparse.Namespace) -> int:
    stopped = broker_from(args).stop()
    print("stopped" if stopped else "not running")
    return 0


def kafka_status(args: argparse.Namespace) -> int:
    status = broker_from(args).status()
    if status.running:
        print(f"running pid={status.pid} bootstrap={status.bootstrap} log={status.log_file}")
        return 0
    print(f"not running (log: {status.log_file})")
    return 3


def registry_from(args: argparse.Namespace) -> LocalSchemaRegistry:
    return LocalSchemaRegistry(args.data_dir, port=args.port)


def registry_start(args: argparse.Namespace) -> int:
    print(registry_from(args).start())
    return 0


def registry_stop(args: argparse.Namespace) -> int:
    print("stopped" if registry_from(args).stop() else "not running")
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from streams.db.migrate import upgrade
    from streams.settings import load_settings

    url = load_settings().database.url
    upgrade(url, args.revision)
    print(f"database at {args.revision}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(
        args.data_dir.parent,
        port=args.port,
        controller_port=args.controller_port,
        users=args.users,
        days=args.days,
        web_port=args.web_port,
        wait=args.wait,
        posts=args.posts,
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="streams", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)

    def with_broker_options(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--port", type=positive_int, default=9092, help="broker port on 127.0.0.1 (default 9092)")
        command.add_argument("--controller-port", type=positive_int, help="KRaft controller port (default: port + 1)")
        command.add_argument(
            "--data-dir", type=Path, default=DEFAULT_HOME / "kafka", help="broker data and logs (default .streams/kafka)"
        )
        return command

    kafka = commands.add_parser("kafka", help="run a local Apache Kafka broker (KRaft)").add_subparsers(
        dest="action", required=True
    )
    start = with_broker_options(kafka.add_parser("start", help="start the broker and wait until it answers"))
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker (default 90)")
    start.set_defaults(run=kafka_start)
    with_broker_options(kafka.add_parser("stop", help="stop the broker this folder started")).set_defaults(run=kafka_stop)
    with_broker_options(kafka.add_parser("status", help="is the broker running?")).set_defaults(run=kafka_status)

    registry = commands.add_parser(
        "registry", help="run a local Confluent-compatible Schema Registry (Apicurio)"
    ).add_subparsers(dest="action", required=True)
    for action, run, text in (("start", registry_start, "start it and print its URL"), ("stop", registry_stop, "stop it")):
        command = registry.add_parser(action, help=text)
        command.add_argument("--port", type=positive_int, default=8081, help="port on 127.0.0.1 (default 8081)")
        command.add_argument("--data-dir", type=Path, default=DEFAULT_HOME / "registry", help="default .streams/registry")
        command.set_defaults(run=run)

    database = commands.add_parser("db", help="the database").add_subparsers(dest="action", required=True)
    upgrade = database.add_parser("upgrade", help="migrate the configured database (DATABASE_URL)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    upgrade.set_defaults(run=db_upgrade)

    add_dlt_commands(commands)
    add_topic_commands(commands)
    add_produce_command(commands)
    add_health_command(commands)

    run_demo = with_broker_options(commands.add_parser("demo", help="broker, worker, demo events and the web view"))
    run_demo.add_argument("--users", type=positive_int, default=1000, help="demo signups to publish (default 1000)")
    run_demo.add_argument("--days", type=positive_int, default=7, help="spread signups over this many days (default 7)")
    run_demo.add_argument("--posts", type=positive_int, default=50, help="demo posts with activity (default 50)")
    run_demo.add_argument("--web-port", type=positive_int, default=6066, help="worker web view port (default 6066)")
    run_demo.add_argument("--no-wait", dest="wait", action="store_false", help="stop everything once the counts show")
    run_demo.set_defaults(run=demo)
    return root


def stop_on_sigterm(signum: int, frame: object) -> None:
    """Let SIGTERM unwind like Ctrl-C, so the demo stops the worker and broker it started."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        return args.run(args)
    except StreamsError as exc:
        print(f"streams: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
