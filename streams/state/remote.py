"""The state engine in a process of its own, and the worker's handle on it.

Folding is pure Python work, and so is everything Faust does for the agents; in one process they
take turns on one interpreter lock. So the worker starts the engine as a child process
(``EngineProcess``), supervises it, and reads its states through a Unix socket of the
abstract namespace, authenticated with a key; the worker hands the child both on its stdin
(``EngineClient`` has the same reads as ``StateEngine``). The child stops when asked, and by
itself once its worker is gone.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Metric

from streams.errors import StreamsError
from streams.state.changelog import Restoring
from streams.state.engine import State, StateEngine

logger = logging.getLogger(__name__)

V = TypeVar("V")

#: How often the engine process looks for its worker, and the worker for its engine process.
WATCH_S = 1.0
STOP_TIMEOUT_S = 30.0
#: The longest a read waits for the engine process: the web view answers 503 rather than wait longer.
READ_TIMEOUT_S = 2.0
#: The engine process's metrics that its worker serves: the service's own, not the interpreter's.
METRICS_PREFIX = "streams_"
#: The reads a worker may ask of its engine process.
READS = frozenset({"get", "holds", "held_items", "held_ranked", "partitions", "restores", "status", "estimated_keys",
                   "standby_partitions", "metrics"})


class EngineUnavailableError(StreamsError):
    """The worker's state engine process cannot be reached; it is being started again."""


@dataclass(frozen=True)
class AtLeast:
    """Accepts values whose ``field`` is at least ``minimum``: a filter that can cross to the engine process."""

    field: str
    minimum: int

    def __call__(self, value: Any) -> bool:
        return bool(getattr(value, self.field) >= self.minimum)


class EngineServer:
    """Answers a worker's reads of ``engine``'s states, one thread per connection."""

    def __init__(self, engine: StateEngine, address: str, authkey: bytes) -> None:
        self.engine = engine
        self.states = {state.name: state for state in engine.states}
        self.listener = Listener(address, family="AF_UNIX", authkey=authkey)

    def serve_forever(self) -> None:
        while True:
            try:
                connection = self.listener.accept()
            except OSError:
                return
            except Exception:
                logger.warning("state engine: a connection was refused", exc_info=True)
                continue
            threading.Thread(target=self.answer, args=(connection,), daemon=True).start()

    def answer(self, connection: Connection) -> None:
        with connection:
            while True:
                try:
                    method, args = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    reply: tuple[bool, Any] = (True, self.read(method, *args))
                except Exception as exc:
                    reply = (False, f"{type(exc).__name__}: {exc}")
                connection.send(reply)

    def read(self, method: str, *args: Any) -> Any:
        if method not in READS:
            raise ValueError(f"no such read: {method!r}")
        if method == "status":
            return self.engine.status()
        if method == "metrics":
            return [family for family in REGISTRY.collect() if family.name.startswith(METRICS_PREFIX)]
        return getattr(self.engine, method)(self.states[args[0]], *args[1:])

    def close(self) -> None:
        self.listener.close()


def serve(engine: StateEngine, address: str, authkey: bytes) -> None:
    """Run ``engine`` and answer reads at ``address`` until SIGTERM, or until the worker that started it is gone."""
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = EngineServer(engine, address, authkey)
    threading.Thread(target=server.serve_forever, name="state-reads", daemon=True).start()
    engine.start()
    while not stop.wait(WATCH_S):
        if os.getppid() != parent:
            logger.warning("state engine: its worker is gone; stopping")
            break
    engine.stop()
    server.close()


class EngineClient:
    """The worker's reads of the states its engine process folds; every read answers what was committed."""

    def __init__(self, states: Sequence[State[Any]], group_id: str, partition_count: int, address: str,
                 authkey: bytes) -> None:
        self.states, self.group_id, self.partition_count = list(states), group_id, partition_count
        self.address, self.authkey = address, authkey
        self.local = threading.local()

    def call(self, method: str, *args: Any) -> Any:
        for attempt in (1, 2):
            connection = getattr(self.local, "connection", None)
            try:
                if connection is None:
                    connection = self.local.connection = Client(self.address, family="AF_UNIX", authkey=self.authkey)
                connection.send((method, args))
                if not connection.poll(READ_TIMEOUT_S):
                    connection.close()
                    raise TimeoutError(f"no answer within {READ_TIMEOUT_S:.0f}s")
                ok, answer = connection.recv()
            except (OSError, EOFError) as exc:
                self.local.connection = None
                if attempt == 2:
                    raise EngineUnavailableError(f"the state engine process cannot be reached: {exc}") from exc
                continue
            if not ok:
                raise EngineUnavailableError(f"the state engine process could not answer {method}: {answer}")
            return answer
        raise AssertionError("unreachable")

    def get(self, state: State[V], key: str) -> V | None:
        value: V | None = self.call("get", state.name, key)
        return value

    def holds(self, state: State[Any], key: str) -> bool:
        return bool(self.call("holds", state.name, key))

    def held_items(self, state: State[V]) -> tuple[list[int], list[tuple[str, V]]]:
        partitions, items = self.call("held_items", state.name)
        return list(partitions), list(items)

    def held_ranked(self, state: State[V], limit: int, accept: AtLeast) -> tuple[list[int], list[tuple[str, V]]]:
        partitions, ranked = self.call("held_ranked", state.name, limit, accept)
        return list(partitions), list(ranked)

    def partitions(self, state: State[Any]) -> list[int]:
        return list(self.call("partitions", state.name))

    def standby_partitions(self, state: State[Any]) -> list[int]:
        return list(self.call("standby_partitions", state.name))

    def restores(self, state: State[Any]) -> list[Restoring]:
        return list(self.call("restores", state.name))

    def estimated_keys(self, state: State[Any]) -> int:
        return int(self.call("estimated_keys", state.name))

    def status(self) -> str:
        try:
            return str(self.call("status"))
        except EngineUnavailableError:
            return "stopped"

    def metrics(self) -> list[Metric]:
        """The service's metrics as the engine process counts them (its folds, dead letters and restarts); none
        while it cannot be reached."""
        try:
            return list(self.call("metrics"))
        except EngineUnavailableError:
            return []


def engine_address() -> str:
    """A new name in the abstract Unix socket namespace: no file to clean up, and no path length to mind."""
    return f"\0streams-state-{os.getpid()}-{secrets.token_hex(8)}"


class EngineProcess:
    """Starts the engine process (``command``), hands it the address and the key, and starts it again when it dies;
    ``stop`` ends it."""

    def __init__(self, command: Sequence[str], address: str, authkey: bytes) -> None:
        self.command, self.address, self.authkey = list(command), address, authkey
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.watcher: threading.Thread | None = None
        self.starts = 0

    def start(self) -> None:
        self.stopping.clear()
        self.launch()
        self.watcher = threading.Thread(target=self.watch, name="state-engine-watch", daemon=True)
        self.watcher.start()

    def launch(self) -> None:
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE)
        assert self.process.stdin is not None
        self.process.stdin.write(self.address.encode().hex().encode() + b"\n" + self.authkey.hex().encode() + b"\n")
        self.process.stdin.close()
        self.starts += 1

    def watch(self) -> None:
        while not self.stopping.wait(WATCH_S):
            if self.process is not None and self.process.poll() is not None:
                logger.error("state engine process exited with %s; starting it again", self.process.returncode)
                self.launch()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self.stopping.set()
        if self.watcher is not None:
            self.watcher.join()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.error("state engine process did not stop within %.0fs; killing it", timeout)
            self.process.kill()
            self.process.wait()


def read_handshake() -> tuple[str, bytes]:
    """The address and the key the worker wrote on the engine process's stdin."""
    address = bytes.fromhex(sys.stdin.readline().strip()).decode()
    return address, bytes.fromhex(sys.stdin.readline().strip())


def wait_until_answering(client: EngineClient, timeout: float, alive: Callable[[], bool]) -> None:
    """Return once the engine process answers reads, so the web view never starts before it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            client.call("status")
            return
        except EngineUnavailableError:
            time.sleep(0.05)
