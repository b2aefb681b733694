"""The `course` command as staff run it: a subprocess against the real dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from tests import story
from tests.conftest import task_queue
from worker.main import activities_for, build_worker

pytestmark = pytest.mark.integration

COURSE = [sys.executable, "-c", "from cli.main import main; main()"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    environ: dict[str, str]
    tmp: Path

    async def __call__(self, *args: str, stdin: str | None = None, role: str = "prescriber") -> Result:
        env = {**self.environ, "COURSE_ACTOR": f"staff-{role}", "COURSE_ROLE": role}
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


@pytest_asyncio.fixture
async def cli(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path) -> AsyncIterator[Cli]:
    queue = task_queue()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel()),
    )
    environ = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "COURSE_TASK_QUEUE": queue,
        "DATABASE_URL": pg_dsn,
    }
    async with worker:
        yield Cli(environ, tmp_path)


async def test_a_clinician_takes_a_course_through_preparation_from_the_command_line(cli: Cli) -> None:
    opened = await cli(
        "open",
        "--patient",
        "pt-cli-1",
        "--clinician",
        "dr-ames",
        "--self-pay",
        "--condition",
        "gad",
        "--json",
        role="operations",
    )
    assert opened.code == 0, opened.err
    course = opened.json()["course_id"]

    assessed = await cli("record", course, "assessment", "--data", cli.payload("a", story.assessment()))
    assert assessed.code == 0, assessed.err
    for actor, command in story.preparation(datetime.now(UTC)):
        step = command.step  # type: ignore[attr-defined]
        result = await cli(
            "record",
            course,
            step,
            "--data",
            "-",
            "--json",
            stdin=command.model_dump_json(exclude={"step"}),  # type: ignore[attr-defined]
            role=actor.role.value,
        )
        assert result.code == 0, (step, result.err)
    status = await cli("status", course, "--json", "--actor", "dr-ames")  # the course's prescriber
    assert status.code == 0
    view = status.json()
    assert view["phase"] == "dosing" and view["awaiting"] == ["check-in"]

    events = await cli("events", course, "--json", "--actor", "dr-ames")
    assert events.code == 0, events.err
    stream = events.json()
    assert [e["version"] for e in stream] == list(range(1, len(stream) + 1))
    assert stream[-1]["type"] == "PreparationCompleted"
    assert stream[-1]["version"] == view["version"]


async def test_bad_input_exits_2_or_3_and_writes_nothing(cli: Cli) -> None:
    course = (await cli("open", "--patient", "pt-cli-2", "--clinician", "dr-ames", "--self-pay", "--json")).json()[
        "course_id"
    ]
    await cli("record", course, "assessment", "--data", cli.payload("a", story.assessment()))
    before = (await cli("events", course, "--json", "--actor", "dr-ames")).json()

    malformed = await cli(
        "record",
        course,
        "check-in",
        "--data",
        "-",
        stdin='{"session_number": "one", "vitals": {}, "ride_home_arranged": true}',
    )
    assert malformed.code == 2 and "session_number" in malformed.err
    not_json = await cli("record", course, "intentions", "--data", "-", stdin="{not json")
    assert not_json.code == 2
    unknown_step = await cli("record", course, "sedation", "--data", "-", stdin="{}")
    assert unknown_step.code == 2 and "unknown step" in unknown_step.err
    early = await cli("record", course, "dosing-session", "--data", cli.payload("d", story.dose(1)), role="nurse")
    assert early.code == 2 and "preparation_incomplete" in early.err
    nobody = await cli("record", course, "intentions", "--data", "-", stdin='{"goals": "x"}', role="")
    assert nobody.code == 2
    missing = await cli("status", "3f1e9c2a-0000-4000-8000-000000000000")
    assert missing.code == 3
    missing_record = await cli(
        "record", "3f1e9c2a-0000-4000-8000-000000000000", "intentions", "--data", "-", stdin='{"goals": "x"}'
    )
    assert missing_record.code == 3

    assert (await cli("events", course, "--json", "--actor", "dr-ames")).json() == before


async def test_the_schema_of_each_step_is_printed_for_form_builders(cli: Cli) -> None:
    result = await cli("record", "--schema", "check-in")
    assert result.code == 0
    schema = json.loads(result.out)
    assert set(schema["required"]) == {"session_number", "vitals", "ride_home_arranged"}
    assert (await cli("record", "--schema", "nope")).code == 2


async def _opened(cli: Cli, patient: str) -> str:
    opened = await cli(
        "open", "--patient", patient, "--clinician", "dr-ames", "--self-pay", "--json", role="operations"
    )
    assert opened.code == 0, opened.err
    return str(opened.json()["course_id"])


async def _types(cli: Cli, course: str) -> list[str]:
    events = await cli("events", course, "--json", "--actor", "dr-ames")
    assert events.code == 0, events.err
    return [e["type"] for e in events.json()]


async def test_the_same_command_sent_twice_is_recorded_once_and_a_new_request_id_records_again(cli: Cli) -> None:
    course = await _opened(cli, "pt-cli-3")
    assert (await cli("record", course, "assessment", "--data", cli.payload("a", story.assessment()))).code == 0
    goals = '{"goals": "Fewer panic episodes at work"}'
    for _ in range(2):  # a clinician who saw no answer runs the command again
        again = await cli("record", course, "intentions", "--data", "-", stdin=goals, role="therapist")
        assert again.code == 0, again.err
    assert (await _types(cli, course)).count("IntentionsRecorded") == 1
    # Another actor, or an explicit new request id, is a new request.
    other = await cli("record", course, "intentions", "--data", "-", stdin=goals, role="nurse")
    fresh = await cli(
        "record", course, "intentions", "--data", "-", "--request-id", "r-2", stdin=goals, role="therapist"
    )
    assert other.code == fresh.code == 0, (other.err, fresh.err)
    assert (await _types(cli, course)).count("IntentionsRecorded") == 3


async def test_a_second_hold_with_the_same_reason_and_its_release_are_each_recorded(cli: Cli) -> None:
    """Identical commands that recur on purpose are told apart by the course's moment, not lost."""
    course = await _opened(cli, "pt-cli-4")
    for _ in range(2):
        for command in (["hold", course, "--reason", "patient_travel"], ["hold", course, "--reason", "patient_travel"]):
            held = await cli(*command, "--json", role="operations")  # the second is a retry: applied once
            assert held.code == 0 and held.json()["flags"]["on_hold"] is True, held.err
        released = await cli("release", course, "--json", role="operations")
        assert released.code == 0 and released.json()["flags"]["on_hold"] is False, released.err
        retried = await cli("release", course, "--json", role="operations")  # a retry after it took effect
        assert retried.code == 0 and retried.json()["version"] == released.json()["version"], retried.err
    types = await _types(cli, course)
    assert types.count("HoldPlaced") == types.count("HoldReleased") == 2


async def test_with_no_worker_serving_courses_the_cli_says_so_and_exits_1(cli: Cli) -> None:
    unserved = Cli({**cli.environ, "COURSE_TASK_QUEUE": task_queue(), "STEP_DEADLINE_SECONDS": "2"}, cli.tmp)
    course = await _opened(unserved, "pt-cli-5")  # opening needs no worker: the course waits for one
    loop = asyncio.get_running_loop()
    for command in (
        ["record", course, "assessment", "--data", cli.payload("a", story.assessment())],
        ["hold", course, "--reason", "patient_travel"],  # derives its id from the course's state first
        ["withdraw", course, "--reason", "patient_request", "--wait", "1", "--request-id", "w-1"],
    ):
        started = loop.time()
        result = await unserved(*command)
        took = loop.time() - started
        assert result.code == 1, (command, result.err)
        assert "no worker is serving courses" in result.err, result.err
        assert "Traceback" not in result.err and "RPCError" not in result.err
        assert took < 20, took  # the wait is bounded (2 s here, then a few describe calls)
    assert "retry with request id w-1" in result.err


async def test_reads_from_the_command_line_follow_the_care_team_and_course_audit_shows_them(cli: Cli) -> None:
    """The CLI's reader is its actor (self-declared until the CLI signs in with a staff token)."""
    course = await _opened(cli, "pt-cli-reads")
    refused = await cli("events", course, "--json", "--actor", "dr-lind")
    assert refused.code == 4 and "break_glass_required" in refused.err and "emergency" in refused.err
    glass = await cli("events", course, "--json", "--actor", "dr-lind", "--break-glass", "covering_colleague")
    assert glass.code == 0, glass.err
    assert glass.json()[0]["type"] == "CourseOpened"
    ops = await cli("status", course, "--json", role="operations")
    assert ops.code == 0 and ops.json()["view"] == "operations" and "gad7" not in ops.json()
    assert (await cli("events", course, role="operations")).code == 4

    audit = await cli("audit", course, "--json", "--actor", "dr-ames")
    assert audit.code == 0, audit.err
    reads = [(r["staff_id"], r["what"], r["channel"], r["break_glass"]) for r in audit.json()["reads"]]
    assert reads == [
        ("dr-lind", "events", "cli", "covering_colleague"),
        ("staff-operations", "operations", "cli", None),
        ("dr-ames", "audit", "cli", None),
    ]
    assert audit.json()["changes"][0]["type"] == "CourseOpened"
    text = await cli("audit", course, "--actor", "dr-ames")
    assert "BREAK-GLASS: covering_colleague" in text.out
    assert (await cli("audit", course, "--actor", "dr-lind")).code == 4


async def test_a_clinic_admin_publishes_a_policy_and_courses_open_on_it_by_name(cli: Cli) -> None:
    name = f"cli-{uuid4().hex[:8]}"
    source = cli.tmp / "policy.json"
    source.write_text(json.dumps({"consent_form_version": "2026-09", "bp_threshold": {"systolic": 150}}))
    refused = await cli("policy", "publish", str(source), "--name", name, role="prescriber")
    assert refused.code == 2 and "clinic_admin" in refused.err, refused.err
    published = await cli("policy", "publish", str(source), "--name", name, "--json", role="clinic_admin")
    assert published.code == 0, published.err
    version = published.json()
    assert (version["version"], version["published_by"]) == (1, "staff-clinic_admin")
    again = await cli("policy", "publish", str(source), "--name", name, role="clinic_admin")
    assert again.code == 0 and again.out.startswith("unchanged") and f"{name} version 1" in again.out
    listed = [row for row in (await cli("policy", "list", "--json")).json() if row["name"] == name]
    assert [(row["version"], row["current"]) for row in listed] == [(1, True)]
    shown = await cli("policy", "show", name)
    assert shown.code == 0 and version["sha256"] in shown.out and '"2026-09"' in shown.out

    unsafe = cli.tmp / "unsafe.json"
    unsafe.write_text(json.dumps({"day_length": "PT1S"}))
    out_of_bounds = await cli("policy", "publish", str(unsafe), "--name", name, role="clinic_admin")
    assert out_of_bounds.code == 2 and "policy_out_of_bounds" in out_of_bounds.err and "day_length" in out_of_bounds.err

    opening = ("open", "--patient", "pt-cli-6", "--clinician", "dr-ames", "--self-pay", "--json")
    opened = await cli(*opening, "--policy-name", name, role="operations")
    assert opened.code == 0, opened.err
    view = (await cli("status", opened.json()["course_id"], "--json", "--actor", "dr-ames")).json()
    assert view["policy"] == {"name": name, "version": 1, "sha256": version["sha256"]}

    inline = await cli(*opening, "--policy", str(source), role="operations")
    assert inline.code == 2 and "course policy publish" in inline.err, inline.err
    unknown = await cli(*opening, "--policy-name", f"nowhere-{uuid4().hex[:8]}", role="operations")
    assert unknown.code == 2 and "unknown_policy" in unknown.err
    admin = await cli(*opening, role="clinic_admin")
    assert admin.code == 2 and "takes no part in courses" in admin.err
