"""The streams command and the worker at start-up: one clear line for what a user can fix."""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import main
from streams.devkafka import LocalBroker, MissingToolError
from streams.devkafka.broker import cluster_id
from tests.conftest import ROOT, free_port


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["kafka", "start", "--port", "abc"], ["kafka", "explode"], ["demo", "--users", "0"], [],
        ["topics", "create", "--partitions", "0"], ["topics"], ["produce"], ["produce", "--demo", "many"],
        ["produce", "--demo", "5", "--file", "x.jsonl"], ["produce", "--demo", "5", "--delay", "0"],
        ["produce", "--demo", "5", "--delay", "soon"], ["lag", "--bogus"], ["lag", "--all", "--relays"],
        ["health", "--timeout"],
    ],
)
def test_bad_arguments_print_usage_and_exit_2_without_a_traceback(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: streams") and "Traceback" not in err


def test_status_and_stop_of_a_broker_that_is_not_running(tmp_path: Path, capsys) -> None:
    assert main(["kafka", "status", "--data-dir", str(tmp_path / "kafka")]) == 3
    assert main(["kafka", "stop", "--data-dir", str(tmp_path / "kafka")]) == 0
    assert "not running" in capsys.readouterr().out


def test_stop_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        broker = LocalBroker(tmp_path / "kafka")
        broker.home.mkdir(parents=True)
        broker.pid_file.write_text(str(stranger.pid))
        assert broker.running_pid() is None
        assert broker.stop() is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_missing_java_is_one_line_naming_the_package_to_install(tmp_path: Path) -> None:
    out = run(
        sys.executable, "-m", "streams.cli", "kafka", "start", "--data-dir", str(tmp_path / "kafka"),
        env={"PATH": str(tmp_path)},
    )
    assert out.returncode == 1
    assert out.stderr == "streams: java not found on PATH: install openjdk-17-jre-headless (e.g. apt-get install openjdk-17-jre-headless)\n"


def test_missing_maven_is_named_when_the_jars_are_not_cached(tmp_path: Path, monkeypatch) -> None:
    java_only = tmp_path / "bin"
    java_only.mkdir()
    (java_only / "java").symlink_to(shutil.which("java"))
    monkeypatch.setenv("PATH", str(java_only))
    with pytest.raises(MissingToolError, match=r"^mvn not found on PATH: install maven"):
        LocalBroker(tmp_path / "kafka", jars_cache=tmp_path / "no-jars").jars_dir()


@pytest.mark.kafka
def test_status_reports_the_running_broker_and_a_second_start_reuses_it(local_broker: LocalBroker | None) -> None:
    if local_broker is None:
        pytest.skip("the broker was given through KAFKA_BOOTSTRAP, not started by this run")
    cli = (sys.executable, "-m", "streams.cli", "kafka")
    where = ("--port", str(local_broker.port), "--controller-port", str(local_broker.controller_port),
             "--data-dir", str(local_broker.home))
    status = run(*cli, "status", *where)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running pid={local_broker.running_pid()} bootstrap={local_broker.bootstrap}" in status.stdout
    again = run(*cli, "start", *where)
    assert (again.returncode, again.stdout) == (0, local_broker.bootstrap + "\n")


def test_worker_with_an_unreachable_broker_exits_with_one_line() -> None:
    out = run(
        sys.executable, "-m", "faust", "-A", "streams.app", "worker",
        env={"STREAMS_KAFKA__BROKERS": f"127.0.0.1:{free_port()}", "STREAMS_WEB__PORT": str(free_port())},
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.strip().splitlines()[-1].startswith("streams: no Kafka broker answered at 127.0.0.1:")


def test_worker_with_a_mistyped_broker_address_exits_with_one_line() -> None:
    out = run(sys.executable, "-m", "faust", "-A", "streams.app", "worker", env={"KAFKA_BROKERS": "localhost9092"})
    assert out.returncode != 0
    assert out.stderr.strip() == (
        "streams: bad setting: kafka.brokers='localhost9092': "
        "Value error, expected host:port[,host:port...], got 'localhost9092'"
    )


def test_cached_jars_need_neither_maven_nor_the_network(local_broker: LocalBroker | None, tmp_path: Path, monkeypatch) -> None:
    if local_broker is None:
        pytest.skip("the broker was given through KAFKA_BOOTSTRAP, so no jars were cached by this run")
    java_only = tmp_path / "bin"
    java_only.mkdir()
    (java_only / "java").symlink_to(shutil.which("java"))
    monkeypatch.setenv("PATH", str(java_only))
    cached = LocalBroker(tmp_path / "kafka", jars_cache=local_broker.jars_cache).jars_dir()
    assert any(jar.name.startswith("kafka_2.13-") for jar in cached.glob("*.jar"))


@pytest.mark.kafka
def test_demo_starts_broker_and_worker_counts_the_events_and_stops_both(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run(
        sys.executable, "-m", "streams.cli", "demo", "--no-wait", "--users", "150", "--days", "3",
        "--port", str(free_port()), "--controller-port", str(free_port()), "--web-port", str(free_port()),
        "--data-dir", str(home / "kafka"),
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"total": 150' in out.stdout
    top = out.stdout.split("top posts by engagement rate:\n")[1].splitlines()[:5]
    assert all(line.strip().startswith("post-") and "rate" in line for line in top), out.stdout
    assert LocalBroker(home / "kafka").running_pid() is None


@pytest.mark.kafka
def test_demo_stopped_by_sigterm_stops_the_worker_and_broker_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--users", "20", "--port", str(free_port()),
         "--controller-port", str(free_port()), "--web-port", str(free_port()), "--data-dir", str(home / "kafka")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        for line in demo.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        broker = LocalBroker(home / "kafka")
        assert broker.running_pid() is not None
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 130
        assert broker.running_pid() is None
        assert "Stopping..." in (home / "worker.log").read_text()
    finally:
        demo.kill()



def test_a_taken_controller_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run(sys.executable, "-m", "streams.cli", "kafka", "start", "--port", str(free_port()),
                  "--controller-port", str(port), "--data-dir", str(tmp_path / "kafka"))
    assert out.returncode == 1
    assert out.stderr == f"streams: port {port} on 127.0.0.1 is already in use by another process\n"


def test_cluster_ids_never_start_with_a_dash_that_the_storage_tool_would_read_as_an_option() -> None:
    ids = [cluster_id() for _ in range(5000)]
    assert all(len(id_) == 22 and not id_.startswith("-") for id_ in ids)
    assert len(set(ids)) == len(ids)
