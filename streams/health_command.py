"""``streams health``: what a worker's /health says, as a short table; the exit code says healthy or not."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

from streams.errors import StreamsError
from streams.settings import load_settings
from tables.access import bearer


class WorkerUnreachableError(StreamsError):
    """No worker web view answered at the URL."""


def fetch_health(url: str, token: str | None, timeout: float) -> dict:
    request = urllib.request.Request(url.rstrip("/") + "/health", headers=bearer(token))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as unhealthy:
        if unhealthy.code == 503:
            return json.loads(unhealthy.read())
        raise WorkerUnreachableError(f"{url}/health answered {unhealthy.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WorkerUnreachableError(f"no worker answered at {url}: {getattr(exc, 'reason', exc)}") from None


def health(args: argparse.Namespace) -> int:
    settings = load_settings()
    url = args.url or f"http://127.0.0.1:{settings.web.port}"
    token = settings.web.token.get_secret_value() if settings.web.token else None
    body = fetch_health(url, token, args.timeout)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(f"status: {body['status']}")
        for topic, state in body.get("topics", {}).items():
            if isinstance(state, dict):
                print(f"  topic {topic:36} lag {state['lag']:>10,}  {state['status']}")
            else:
                print(f"  lag unknown: {state}")
        for table, state in body.get("tables", {}).items():
            print(f"  table {table:36} {state['state']}")
        for name, state in body.get("states", {}).items():
            detail = f"lag {state['lag']:>10,}  {state['status']}" if "lag" in state else state.get("error", "")
            print(f"  state {name:36} {detail}  {state['state']}, partitions {state['partitions']}")
    return 0 if body["status"] == "healthy" else 1


def add_health_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("health", help="a worker's health: lag per topic and state, table recovery; exit 1 if unhealthy")
    command.add_argument("--url", help="the worker's web view (default http://127.0.0.1:<web.port>)")
    command.add_argument("--timeout", type=float, default=15.0)
    command.add_argument("--json", action="store_true", help="print the whole /health document")
    command.set_defaults(run=health)
