"""The faults themselves: worker processes to kill, a Temporal server to restart, a database to
take away, a table to lock. Every wait here is bounded; every process is one we started.

Workers run the real entry point (`worker.main.main`, what `course worker` runs) in their own
process, so SIGKILL is what a crashed host looks like and SIGTERM what an orchestrator sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from worker.converter import data_converter
from worker.dev import dev_server_command, wait_for_server
from worker.settings import Settings

NOT_YET = (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)

ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-c", "from worker.main import main; main()"]
PARTITIONS = 4  # task queue partitions on the dev server (matching.numTaskqueueReadPartitions)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class WorkerProcess:
    """One `course worker` process; start, kill and restart it as often as a test likes."""

    def __init__(
        self, address: str, task_queue: str, dsn: str, log_dir: Path, *, name: str, graceful_seconds: float = 10.0
    ) -> None:
        self.name = name
        self.task_queue = task_queue
        self.log_path = log_dir / f"{name}.log"
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "COURSE_TASK_QUEUE": task_queue,
            "DATABASE_URL": dsn,
            "LOG_LEVEL": os.environ.get("FAULT_WORKER_LOG_LEVEL", "WARNING"),  # INFO to debug a run
            "WORKER_GRACEFUL_SHUTDOWN_SECONDS": str(graceful_seconds),
            # The payload keys: the same keyring the test's client uses, wherever pytest runs from.
            "COURSE_DATA_DIR": str(Settings().course_data_dir.resolve()),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start {len(self.pids) + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                WORKER, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pids.append(self.process.pid)

    async def ready(self, client: Client, within: float = 45.0) -> None:
        """Until this process polls both workflow and activity tasks on its queue."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"{self.name} exited ({self.returncode}) while starting:\n{tail(self.log_path)}")
            try:
                if await self._polling(client):
                    return
            except RPCError as error:
                # A loaded server (or its client) gives up on a call now and then: "not yet", not "no".
                if error.status not in NOT_YET:
                    raise
            await asyncio.sleep(0.1)
        sessions = await _sessions(self.env["DATABASE_URL"])
        raise AssertionError(
            f"{self.name} (pid {self.pid}) not polling after {within:.0f}s; database sessions: {sessions}\n"
            f"{tail(self.log_path)}"
        )

    async def _polling(self, client: Client) -> bool:
        # A poller sits on one partition of the queue, and DescribeTaskQueue describes one
        # partition: ask each (the dev server has 4; children are named /_sys/<queue>/<n>).
        mine = f"{self.pid}@"
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            seen = False
            for partition in range(PARTITIONS):
                name = self.task_queue if partition == 0 else f"/_sys/{self.task_queue}/{partition}"
                described = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                        task_queue_type=kind,
                    ),
                    timeout=timedelta(seconds=5),
                )
                if any(p.identity.startswith(mine) for p in described.pollers):
                    seen = True
                    break
            if not seen:
                return False
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, in-flight tasks abandoned. What a crashed host does."""
        assert self.process is not None and self.alive, f"{self.name} is not running"
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        assert self.process is not None and self.alive, f"{self.name} is not running"
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, within: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running {within:.0f}s later:\n{tail(self.log_path)}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def close(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)


async def _sessions(dsn: str) -> list[tuple[object, ...]]:
    """What the database's sessions are doing: for the message of a worker that never came up."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [tuple(row) for row in rows]
    finally:
        await conn.close()


class DevServer:
    """`temporal server start-dev` on a SQLite file, exactly as `course dev` runs it."""

    def __init__(self, data_dir: Path) -> None:
        self.port, self.ui_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "temporal-server.log"
        settings = Settings(temporal_address=self.address, temporal_ui_port=self.ui_port)
        self.command = dev_server_command(settings, data_dir, ("--log-level", "warn"))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # The client's core logs every retried call while the server is down: errors only.
        quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
        self.runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))

    async def start(self) -> None:
        process = self._spawn()
        await asyncio.to_thread(wait_for_server, process, "127.0.0.1", self.port, self.log_path, 60.0)
        # Listening is not serving ("Frontend is not healthy yet"): wait until the namespace answers.
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await self.connect()
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        return self.process

    async def connect(self) -> Client:
        return await Client.connect(self.address, data_converter=data_converter(), runtime=self.runtime)

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM, as `course dev` does on Ctrl-C; the SQLite file stays."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the Temporal server ignored SIGTERM for {within:.0f}s") from None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def with_database(dsn: str, name: str) -> str:
    head, _, query = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def database_name(dsn: str) -> str:
    return dsn.partition("?")[0].rsplit("/", 1)[1]


class Database:
    """Admin powers over the test database, from a connection to the `postgres` database."""

    def __init__(self, dsn: str) -> None:
        self.name = database_name(dsn)
        self.admin_dsn = with_database(dsn, "postgres")

    async def refuse_connections(self) -> int:
        """The outage: no new connections, every existing one cut. Returns how many were cut."""
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            return await self._terminate(admin)
        finally:
            await admin.close()

    async def cut_connections(self) -> int:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            return await self._terminate(admin)
        finally:
            await admin.close()

    async def _terminate(self, admin: asyncpg.Connection) -> int:
        cut = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()) AS terminated",
            self.name,
        )
        return int(cut or 0)

    async def allow_connections(self) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()


async def waiting_for_lock(dsn: str, table: str) -> int:
    """Sessions blocked waiting for a lock on `table` (asked from inside the test database:
    relation ids are per database)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)", table)
            or 0
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def table_locked(dsn: str, table: str) -> AsyncIterator[None]:
    """Hold ACCESS EXCLUSIVE on `table` (nobody reads or writes it) until the block ends."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()
