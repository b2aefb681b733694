"""The `course` CLI against a served API, as staff run it: one token per member of the clinic.

The `cli` fixture (registered by tests/integration/conftest.py) runs the CLI as a subprocess against
the real dev server, PostgreSQL and the API served in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from api.app import create_app
from api.server import serving
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from course.commands import Actor, Role
from tests.conftest import task_queue
from worker.main import activities_for, build_worker

COURSE = [sys.executable, "-c", "from cli.main import main; main()"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


# Staff of the clinic, each with their own token: one per role, and the named clinicians.
MEMBERS = [Actor(id=f"staff-{role.value}", role=role) for role in Role] + [
    Actor(id="dr-ames", role=Role.PRESCRIBER),
    Actor(id="dr-lind", role=Role.PRESCRIBER),
    Actor(id="dr-dash", role=Role.PRESCRIBER),  # only tests/integration/test_notifications_cli.py's courses
]


@dataclass
class Cli:
    environ: dict[str, str]
    tmp: Path
    tokens: dict[str, str]

    async def __call__(
        self, *args: str, stdin: str | None = None, role: str = "prescriber", member: str | None = None
    ) -> Result:
        """As `member` (default: the staff member of `role`); `role=""`: nobody signed in."""
        env = dict(self.environ)
        if member or role:
            env["COURSE_TOKEN"] = self.tokens[member or f"staff-{role}"]
        process = await asyncio.create_subprocess_exec(
            *COURSE,
            *args,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), 60)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    def payload(self, name: str, model: Any) -> str:
        path = self.tmp / f"{name}.json"
        path.write_text(model.model_dump_json(exclude={"step"}))
        return str(path)


@asynccontextmanager
async def api_for(
    dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, queue: str, tokens: dict[str, str]
) -> AsyncIterator[str]:
    """The clinic's API on a free port, for the courses of `queue`; yields its URL."""
    staff = ConfiguredStaff([(m, token_digest(tokens[m.id])) for m in MEMBERS])
    app = create_app(CourseClient(dev_env.client, queue), staff, pg_pool, step_timeout=20)
    async with serving(app, "127.0.0.1", 0) as url:
        yield url


@pytest_asyncio.fixture
async def cli(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path) -> AsyncIterator[Cli]:
    queue = task_queue()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel()),
    )
    tokens = {m.id: new_token() for m in MEMBERS}
    async with worker, api_for(dev_env, pg_pool, queue, tokens) as url:
        environ = {
            **os.environ,
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "COURSE_TASK_QUEUE": queue,
            "DATABASE_URL": pg_dsn,
            "API_URL": url,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no stored token but the test's own
        }
        environ.pop("COURSE_TOKEN", None)
        yield Cli(environ, tmp_path, tokens)
