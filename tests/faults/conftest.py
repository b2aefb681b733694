"""Fixtures for the fault suite: `rig` (worker processes on a fresh task queue of the session's
dev server, a course client, the database, the audit), and the ledger whose line closes the run
(printed in pytest's terminal summary, with or without -s)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from application.courses import CourseClient
from tests.conftest import task_queue
from tests.faults.audit import Audit, Ledger
from tests.faults.harness import WorkerProcess

LEDGER = Ledger()
# Seeded, so a failing run can be replayed: FAULT_SEED=1234 .venv/bin/python -m tests.run tests/faults
SEED = int(os.environ.get("FAULT_SEED", "9"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault injection on the real stack (slow; .ci/run runs it)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LEDGER.courses:
        terminalreporter.write_line(f"{LEDGER.line()} (seed {SEED})")


@dataclass
class Rig:
    """One test's stack: its task queue on the dev server, its workers, PostgreSQL, the audit."""

    address: str
    queue: str
    dsn: str
    pool: asyncpg.Pool
    client: CourseClient
    audit: Audit
    ledger: Ledger
    seed: int
    log_dir: Path
    made: list[WorkerProcess]

    def rng(self, salt: int = 0) -> random.Random:
        return random.Random(self.seed * 1000 + salt)

    def worker(
        self, name: str = "worker", *, graceful_seconds: float = 10.0, address: str | None = None
    ) -> WorkerProcess:
        """A `course worker` process on this test's queue (not started); killed at the end."""
        process = WorkerProcess(
            address or self.address, self.queue, self.dsn, self.log_dir, name=name, graceful_seconds=graceful_seconds
        )
        self.made.append(process)
        return process

    async def started(self, *names: str) -> list[WorkerProcess]:
        processes = [self.worker(name) for name in names]
        for process in processes:
            process.start()
        for process in processes:
            await process.ready(self.client.temporal)
        return processes


@pytest.fixture
def rig(dev_env: WorkflowEnvironment, pg_dsn: str, pg_pool: asyncpg.Pool, tmp_path: Path) -> Iterator[Rig]:
    queue = task_queue()
    client = CourseClient(dev_env.client, queue)
    rig = Rig(
        address=dev_env.client.service_client.config.target_host,
        queue=queue,
        dsn=pg_dsn,
        pool=pg_pool,
        client=client,
        audit=Audit(client, pg_pool, LEDGER),
        ledger=LEDGER,
        seed=SEED,
        log_dir=tmp_path,
        made=[],
    )
    yield rig
    for process in rig.made:
        process.close()
