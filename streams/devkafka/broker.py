"""A real Apache Kafka broker (KRaft, broker and controller in one JVM) for development and tests.

The broker's jars come from Maven Central through the pom beside this module, into a cache
folder keyed by the pom's content, so a second start needs no network. Data, logs and the pid
file live under one home folder that git ignores. A second listener, SASL_PLAINTEXT with SCRAM,
can be added for the users given; their credentials are written when the storage is formatted.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from streams.devkafka.process import DetachedProcess, LocalServerError, java, run_maven

RESOURCES = Path(__file__).parent
POM = RESOURCES / "pom.xml"
LOG4J_CONFIG = RESOURCES / "log4j2.properties"
JVM_HEAP = ("-Xms256m", "-Xmx1g")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class BrokerError(LocalServerError):
    """The local broker could not be started."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    log_file: Path


def cluster_id() -> str:
    """A random cluster id in Kafka's own format (22 url-safe base64 characters).

    Like Kafka's own Uuid.randomUuid, it never starts with "-", which a command line reads as an option.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


class LocalBroker:
    """One local broker, owned through its pid file: it only ever stops the process it started."""

    host = "127.0.0.1"

    def __init__(
        self, home: Path, port: int = 9092, controller_port: int | None = None, jars_cache: Path | None = None,
        scram_port: int | None = None, scram_users: Mapping[str, str] | None = None,
        advertised_port: int | None = None,
    ) -> None:
        """``advertised_port``, when given, is where clients are told to reach the plaintext listener
        (a port forwarded to ``port``)."""
        self.home = home.resolve()
        self.port = port
        self.advertised_port = advertised_port or port
        self.controller_port = controller_port or port + 1
        self.scram_port = scram_port
        self.scram_users = dict(scram_users or {})
        self.data_dir = self.home / "data"
        self.log_file = self.home / "broker.log"
        self.pid_file = self.home / "broker.pid"
        self.properties_file = self.home / "server.properties"
        self.jars_cache = (jars_cache or self.home.parent / "kafka-jars").resolve()
        self.process = DetachedProcess(self.pid_file, marker=str(self.properties_file))

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def scram_bootstrap(self) -> str:
        """The SASL_PLAINTEXT listener where clients log in with SCRAM-SHA-256 or -512."""
        if self.scram_port is None:
            raise BrokerError("this broker has no SCRAM listener")
        return f"{self.host}:{self.scram_port}"

    def listeners(self) -> dict[str, int]:
        """Listener name to port; the controller's is not advertised to clients."""
        named = {"PLAINTEXT": self.port}
        if self.scram_port is not None:
            named["SASL_PLAINTEXT"] = self.scram_port
        return named

    def jars_dir(self) -> Path:
        """Resolve the broker's jars once per pom version; later calls use the cache."""
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
        target = self.jars_cache / digest
        done_marker = target / ".complete"
        if done_marker.exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        run_maven("-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={target}", "-DincludeScope=runtime")
        done_marker.touch()
        return target

    def endpoints(self, ports: Mapping[str, int]) -> str:
        return ",".join(f"{name}://{self.host}:{port}" for name, port in ports.items())

    def write_properties(self) -> None:
        listening = self.endpoints(self.listeners())
        advertised = self.endpoints({**self.listeners(), "PLAINTEXT": self.advertised_port})
        protocols = ",".join(f"{name}:{name}" for name in self.listeners())
        scram = [
            f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}",
            *(f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config="
              "org.apache.kafka.common.security.scram.ScramLoginModule required;" for mechanism in SCRAM_MECHANISMS),
        ] if self.scram_port is not None else []
        self.properties_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{self.host}:{self.controller_port}",
                    f"listeners={listening},CONTROLLER://{self.host}:{self.controller_port}",
                    f"advertised.listeners={advertised}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"listener.security.protocol.map={protocols},CONTROLLER:PLAINTEXT",
                    *scram,
                    f"log.dirs={self.data_dir}",
                    "num.partitions=4",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=8",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )

    def java_command(self, jars: Path, main_class: str, *args: str) -> list[str]:
        return [
            java(), *JVM_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", f"{jars}/*", main_class, *args,
        ]

    def format_storage(self, jars: Path) -> None:
        """Format the KRaft metadata log on first use only."""
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        users = [
            f"--add-scram={mechanism}=[name={name},password={password}]"
            for name, password in self.scram_users.items() for mechanism in SCRAM_MECHANISMS
        ]
        command = self.java_command(
            jars, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id()}", "-c", str(self.properties_file),
            *users,
        )
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.data_dir} failed: {result.stdout.strip()} {result.stderr.strip()}")

    def running_pid(self) -> int | None:
        """The pid of the broker this folder started, if it is alive."""
        return self.process.pid()

    def status(self) -> BrokerStatus:
        pid = self.running_pid()
        ready = pid is not None and port_is_open(self.host, self.port)
        return BrokerStatus(ready, pid, self.bootstrap if ready else None, self.log_file)

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker (or find it already running) and return its bootstrap address once it answers."""
        if self.running_pid() is not None:
            self.wait_ready(timeout)
            return self.bootstrap
        for port in (*self.listeners().values(), self.controller_port):
            if port_is_open(self.host, port):
                raise BrokerError(f"port {port} on {self.host} is already in use by another process")
        self.home.mkdir(parents=True, exist_ok=True)
        jars = self.jars_dir()
        self.write_properties()
        self.format_storage(jars)
        process = self.process.spawn(self.java_command(jars, "kafka.Kafka", str(self.properties_file)), self.log_file)
        self.wait_ready(timeout, process)
        return self.bootstrap

    def wait_ready(self, timeout: float, process: subprocess.Popen | None = None) -> None:
        """Wait until a metadata request succeeds, or fail pointing at the log."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"broker exited with code {process.returncode} during start ({self.first_error()}); see {self.log_file}"
                )
            if port_is_open(self.host, self.port):
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                try:
                    admin.list_topics(timeout=5)
                    return
                except Exception:
                    pass
            time.sleep(0.3)
        raise BrokerError(f"broker did not answer a metadata request on {self.bootstrap} within {timeout:.0f}s; see {self.log_file}")

    def first_error(self) -> str:
        """The first ERROR line of the broker's log, which usually names the cause."""
        for line in self.log_file.read_text(errors="replace").splitlines():
            if " ERROR " in line or "Exception:" in line:
                return line.strip()
        return "no error logged"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker this folder started; False if none was running."""
        return self.process.stop(timeout)
