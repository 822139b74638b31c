"""A worker pinned to CPUs (worker.cpus) runs every one of its threads there, and refuses CPUs it may not use."""

import os
import sys
from pathlib import Path

import pytest

from streams.producer import EventProducer
from tests.conftest import free_port
from tests.test_command_line import run
from tests.test_signups_end_to_end import wait_for


def cpus_allowed(pid: int) -> dict[str, str]:
    """Each thread of ``pid`` (by its thread id) and the CPUs it may run on, as /proc lists them."""
    allowed = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                allowed[task.name] = line.split(":", 1)[1].strip()
    return allowed


@pytest.mark.kafka
def test_a_pinned_worker_runs_all_its_threads_on_its_cpu_and_does_its_work(namespace, start_worker) -> None:
    cpu = max(os.sched_getaffinity(0))
    worker = start_worker(STREAMS_WORKER__CPUS=str(cpu))
    with EventProducer(namespace.settings()) as producer:
        for n in range(40):
            producer.publish_user_created({"id": f"pinned-{n}", "email": f"{n}@example.com", "username": f"pinned{n}"})
    assert wait_for(worker, "/signups", lambda body: body["total"] >= 40)["total"] == 40
    threads = cpus_allowed(worker.process.pid)
    assert len(threads) >= 4, "the consumer, lane and database threads should be running by now"
    assert set(threads.values()) == {str(cpu)}
    assert f"worker pinned to CPU(s) {cpu}" in worker.log_file.read_text()


def test_a_worker_given_a_cpu_it_may_not_use_exits_with_one_line() -> None:
    allowed = os.sched_getaffinity(0)
    out = run(
        sys.executable, "-m", "faust", "-A", "streams.app", "worker",
        env={"STREAMS_WORKER__CPUS": str(max(allowed) + 1), "STREAMS_KAFKA__BROKERS": f"127.0.0.1:{free_port()}",
             "STREAMS_WEB__PORT": str(free_port())},
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.strip().splitlines()[-1] == (
        f"streams: worker.cpus={max(allowed) + 1}: this worker may run on CPUs "
        f"{','.join(str(cpu) for cpu in sorted(allowed))} only"
    )
