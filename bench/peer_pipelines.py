"""Run the peer pipelines of bench.compare: Quix Streams in its own virtualenv, plain Faust on JSON.

Each runs as a process of its own, writes its rate to a result file, and is stopped by its pid.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

from confluent_kafka import Producer

from bench.peers import read_rate
from bench.signups_throughput import create_topic
from streams.events import UserCreated
from streams.schemas import SchemaStore

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".streams" / "peers-venv"
#: Quix pins confluent-kafka<2.13 and more that the project's venv cannot hold; fastavro as the project's.
PEER_REQUIREMENTS = ("quixstreams==3.28.1", f"fastavro=={version('fastavro')}")


def peers_python() -> Path:
    """The peers' virtualenv's Python, the virtualenv made (again) when missing or its pins changed."""
    python = PEERS_VENV / "bin" / "python"
    marker = PEERS_VENV / "bench-requirements.txt"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        print(f"installing {', '.join(PEER_REQUIREMENTS)} into {PEERS_VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


def write_writer_schemas(path: Path) -> Path:
    """The current writer schemas as JSON by fingerprint (hex), for a process without the project."""
    store = SchemaStore()
    schemas = [store.by_name(name) for name in store.names()]
    path.write_text(json.dumps({schema.fingerprint.hex(): json.loads(schema.json) for schema in schemas}))
    return path


def produce_json(bootstrap: str, topic: str, signups: list[UserCreated], partitions: int) -> None:
    """The same events as JSON, keyed and partitioned as EventProducer does, for the plain Faust app."""
    create_topic(bootstrap, topic, partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5,
                         "compression.type": "lz4"})
    for event in signups:
        record = event.to_avro()
        envelope = record["envelope"]
        record["envelope"] = {**envelope, "id": str(envelope["id"]), "created_at": envelope["created_at"].isoformat()}
        while True:
            try:
                producer.produce(topic, json.dumps(record).encode(), event.key().encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise SystemExit("the JSON copy of the signups was not all acknowledged within 60s")


def run_until_result(command: list[str], result: Path, log: Path, timeout: float) -> float:
    """Start ``command``, wait for the rate it writes to ``result``, then stop it; returns events per second."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not result.exists():
            if process.poll() is not None:
                raise SystemExit(f"{command[2]} exited with {process.returncode} before counting every event; "
                                 f"see {log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{command[2]} did not count every event within {timeout:.0f}s; see {log}")
            time.sleep(0.1)
        return read_rate(result)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process we started, SIGKILL it after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def quix(python: Path, bootstrap: str, topic: str, events: int, writers: Path, home: Path, timeout: float) -> float:
    """Quix Streams over the Avro topic, in the peers' virtualenv."""
    run = home / f"quix-{uuid.uuid4().hex[:8]}"
    command = [str(python), "-m", "bench.peers.quix_signups", "--bootstrap", bootstrap, "--topic", topic,
               "--events", str(events), "--writers", str(writers), "--state-dir", str(run), "--result", f"{run}.json"]
    return run_until_result(command, Path(f"{run}.json"), home / "quix.log", timeout)


def faust_json(bootstrap: str, topic: str, partitions: int, events: int, home: Path, timeout: float) -> float:
    """Plain Faust over the JSON copy, with the project's virtualenv."""
    run = home / f"faust-json-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "bench.peers.faust_json_signups", "--bootstrap", bootstrap, "--topic", topic,
               "--partitions", str(partitions), "--events", str(events), "--data-dir", str(run),
               "--result", f"{run}.json"]
    return run_until_result(command, Path(f"{run}.json"), home / "faust-json.log", timeout)
