"""The supervisor's command line for a worker: every setting carried, secrets not."""

from __future__ import annotations

import argparse
from pathlib import Path

from clipper.common.settings_cli import add_settings_flags, settings_from
from clipper.common.tasks import describe_exit
from clipper.frontend.settings import FrontendSettings
from clipper.frontend.workers.supervisor import WorkerPool, worker_env


def parse(flags: list[str]) -> FrontendSettings:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, FrontendSettings)
    return settings_from(parser.parse_args(flags), FrontendSettings)


def test_a_worker_gets_every_setting_of_its_parent_and_its_own_identity() -> None:
    parent = FrontendSettings(
        routes=Path("/etc/clipper/routes.yaml"),
        workers=3,
        queue_capacity=77,
        aimd_budget_fraction=0.25,
        shed_late=False,
        seed=5,
        drain_delay_s=2.5,
    )
    pool = WorkerPool(parent)
    command = pool.command(2)
    worker = parse(command[command.index("frontend") + 1 :])
    assert (worker.worker, worker.worker_group, worker.workers) == (2, pool.group, 3)
    assert worker.grpc_reuse_port is False  # a worker binds with SO_REUSEPORT regardless
    # The parent resolves auto when it starts (native: it runs the front for all).
    assert worker.grpc_server == "python"
    own = {"worker", "worker_group", "grpc_server"}
    assert worker.model_dump(exclude=own) == parent.model_dump(exclude=own)


def test_a_redis_password_stays_off_the_workers_command_line() -> None:
    url = "redis://:hunter2@redis:6379/0"
    parent = FrontendSettings(workers=2, state_backend="redis", state_url=url)
    command = WorkerPool(parent).command(0)
    assert not any("hunter2" in part for part in command)
    assert worker_env(parent)["CLIPPER_FRONTEND_STATE_URL"] == url


def test_exit_statuses_read_as_words() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit status 3"
