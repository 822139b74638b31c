"""What the local servers share: tools they need, Maven downloads, and detached processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from streams.errors import StreamsError


class LocalServerError(StreamsError):
    """A local development server could not be installed, started or stopped."""


class MissingToolError(LocalServerError):
    """java or mvn is not on PATH."""


def require_tool(name: str, package: str) -> str:
    """Return the tool's path, or fail with one line naming what to install."""
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"{name} not found on PATH: install {package} (e.g. apt-get install {package})")
    return path


def java() -> str:
    return require_tool("java", "openjdk-17-jre-headless")


def run_maven(*arguments: str) -> None:
    """Run mvn quietly in batch mode; on failure raise with the last lines it printed."""
    java()
    command = [require_tool("mvn", "maven"), "-q", "-B", *arguments]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise LocalServerError("maven failed: " + " | ".join(tail))


#: How long a spawned server may take to become itself (exec) after its fork.
EXEC_TIMEOUT = 30.0


class DetachedProcess:
    """Owns one process through a pid file, and recognises it by a marker in its command line.

    The marker (a path only this server's command line holds) keeps ``stop`` from ever
    signalling a process that merely inherited a recycled pid.
    """

    def __init__(self, pid_file: Path, marker: str) -> None:
        self.pid_file = pid_file
        self.marker = marker.encode()

    def pid(self) -> int | None:
        """The pid from the pid file, if that process is alive and is ours."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if self.marker in cmdline else None

    def spawn(self, command: list[str], log_file: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``command`` and return once it runs as itself (or has exited).

        Popen returns as soon as the child is forked; until it has exec'd, its command line is not
        the server's, and from a large parent that took seconds, so ``pid()`` would find no server.
        """
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + EXEC_TIMEOUT
        while self.pid() is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return process

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; False if ours was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pid() == pid:
            os.kill(pid, signal.SIGKILL)
            while self.pid() == pid:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True
