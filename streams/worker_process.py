"""A Faust worker in its own process, as the demo and the end-to-end tests run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.errors import StreamsError
from tables.access import bearer


class WorkerError(StreamsError):
    """The worker exited or did not come up in time."""


class WorkerProcess:
    """``faust -A streams.app worker`` with settings passed as STREAMS_ environment variables."""

    def __init__(self, env: dict[str, str], log_file: Path, web_port: int) -> None:
        self.env = {**os.environ, **env, "STREAMS_WEB__PORT": str(web_port)}
        self.log_file = log_file
        self.web_port = web_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", "streams.app", "worker", "-l", "info"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.wait_web(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_web(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise WorkerError(f"worker exited during start; see {self.log_file}")
            try:
                self.get("/signups")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise WorkerError(f"worker web view did not answer on {self.url} within {timeout:.0f}s; see {self.log_file}")

    def get(self, path: str, timeout: float = 5.0) -> dict:
        """GET a JSON document from the worker's web view."""
        return json.loads(self.text(path, timeout))

    def text(self, path: str, timeout: float = 5.0) -> str:
        """GET a page of the worker's web view as text, with the view's token when it has one."""
        token = self.env.get("STREAMS_WEB__TOKEN")
        request = urllib.request.Request(self.url + path, headers=bearer(token))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read().decode()

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the worker we started: SIGTERM, then SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
