"""A real Confluent-compatible Schema Registry for development and tests: Apicurio Registry.

Apicurio is published to Maven Central as a self-contained Quarkus application with an
in-memory store, and it serves the Confluent Schema Registry API under /apis/ccompat/v7, which
is what confluent_kafka.schema_registry talks to.
"""

from __future__ import annotations

import json
import socket
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.devkafka.process import DetachedProcess, LocalServerError, java, run_maven

APICURIO_VERSION = "3.0.9"
APICURIO_ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
CONFLUENT_API = "/apis/ccompat/v7"


class LocalSchemaRegistry:
    """One local registry, owned through its pid file like the local broker."""

    host = "127.0.0.1"

    def __init__(self, home: Path, port: int = 8081, cache: Path | None = None) -> None:
        self.home = home.resolve()
        self.port = port
        self.cache = (cache or self.home.parent / "registry-app").resolve()
        self.log_file = self.home / "registry.log"
        self.process = DetachedProcess(self.home / "registry.pid", marker=f"-Djava.io.tmpdir={self.home / 'tmp'}")

    @property
    def url(self) -> str:
        """The base URL confluent-kafka's SchemaRegistryClient takes."""
        return f"http://{self.host}:{self.port}{CONFLUENT_API}"

    def app_dir(self) -> Path:
        """Download and unpack the registry once; later starts need no network."""
        target = self.cache / APICURIO_VERSION
        runner = target / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
        if runner.exists():
            return target
        repository = self.cache / "m2"
        run_maven(f"-Dmaven.repo.local={repository}", "dependency:get", f"-Dartifact={APICURIO_ARTIFACT}", "-Dtransitive=false")
        archive = next(repository.glob(f"io/apicurio/apicurio-registry-app/{APICURIO_VERSION}/*-all.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
        if not runner.exists():
            raise LocalServerError(f"{archive.name} did not contain {runner.name}")
        return target

    def start(self, timeout: float = 90.0) -> str:
        """Start the registry (or find it running) and return its URL once it reports ready."""
        if self.process.pid() is None:
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    raise LocalServerError(f"port {self.port} on {self.host} is already in use by another process")
            app = self.app_dir()
            (self.home / "tmp").mkdir(parents=True, exist_ok=True)
            command = [
                java(), "-Xmx256m", "-XX:+UseSerialGC", f"-Djava.io.tmpdir={self.home / 'tmp'}",
                f"-Dquarkus.http.host={self.host}", f"-Dquarkus.http.port={self.port}",
                "-jar", f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar",
            ]
            self.process.spawn(command, self.log_file, cwd=app)
        self.wait_ready(timeout)
        return self.url

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise LocalServerError(f"schema registry exited during start; see {self.log_file}")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/health/ready", timeout=2) as response:
                    if json.load(response).get("status") == "UP":
                        return
            except (urllib.error.URLError, ConnectionError, ValueError):
                pass
            time.sleep(0.3)
        raise LocalServerError(f"schema registry not ready on port {self.port} within {timeout:.0f}s; see {self.log_file}")

    def stop(self) -> bool:
        return self.process.stop()
