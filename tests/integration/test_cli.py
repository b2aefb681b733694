"""The `course` command as staff run it: a subprocess against the real dev server and PostgreSQL.

Staff commands go through the API (served here in the test's loop) with the person's token; the
token, never COURSE_ACTOR or --actor, decides who acted. Break-glass steps go to Temporal directly,
signed with the operator's own key (BREAK_GLASS_KEY, set by tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests import story
from tests.conftest import task_queue
from tests.integration.staff_cli import Cli, api_for

pytestmark = pytest.mark.integration


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
    status = await cli("status", course, "--json", member="dr-ames")  # the course's prescriber
    assert status.code == 0
    view = status.json()
    assert view["phase"] == "dosing" and view["awaiting"] == ["check-in"]

    events = await cli("events", course, "--json", member="dr-ames")
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
    before = (await cli("events", course, "--json", member="dr-ames")).json()

    malformed = await cli(
        "record",
        course,
        "check-in",
        "--data",
        "-",
        stdin='{"session_number": "one", "vitals": {}, "ride_home_arranged": true}',
    )
    assert malformed.code == 2 and "Session number must be a whole number." in malformed.err
    not_json = await cli("record", course, "intentions", "--data", "-", stdin="{not json")
    assert not_json.code == 2 and "a key must be in double quotes (line 1, column 2)" in not_json.err
    unknown_step = await cli("record", course, "sedation", "--data", "-", stdin="{}")
    assert unknown_step.code == 2 and "unknown step" in unknown_step.err
    early = await cli("record", course, "dosing-session", "--data", cli.payload("d", story.dose(1)), role="nurse")
    assert early.code == 2 and "preparation_incomplete" in early.err
    nobody = await cli("record", course, "intentions", "--data", "-", stdin='{"goals": "x"}', role="")
    assert nobody.code == 5 and "course login" in nobody.err
    missing = await cli("status", "3f1e9c2a-0000-4000-8000-000000000000")
    assert missing.code == 3
    missing_record = await cli(
        "record", "3f1e9c2a-0000-4000-8000-000000000000", "intentions", "--data", "-", stdin='{"goals": "x"}'
    )
    assert missing_record.code == 3

    assert (await cli("events", course, "--json", member="dr-ames")).json() == before


async def test_the_schema_of_each_step_is_printed_for_form_builders(cli: Cli) -> None:
    result = await cli("record", "--schema", "check-in")
    assert result.code == 0
    schema = json.loads(result.out)
    assert set(schema["required"]) == {"session_number", "vitals", "ride_home_arranged"}
    assert schema["properties"]["vitals"]["title"] == "Pre-dose vitals"  # the words the console shows
    assert (await cli("record", "--schema", "nope")).code == 2


async def _opened(cli: Cli, patient: str) -> str:
    opened = await cli(
        "open", "--patient", patient, "--clinician", "dr-ames", "--self-pay", "--json", role="operations"
    )
    assert opened.code == 0, opened.err
    return str(opened.json()["course_id"])


async def _types(cli: Cli, course: str) -> list[str]:
    events = await cli("events", course, "--json", member="dr-ames")
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


async def test_with_no_worker_serving_courses_the_cli_says_so_and_exits_1(
    cli: Cli, dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool
) -> None:
    async with api_for(dev_env, pg_pool, task_queue(), cli.tokens) as url:  # an API whose queue nobody polls
        unserved = Cli({**cli.environ, "API_URL": url, "STEP_DEADLINE_SECONDS": "2"}, cli.tmp, cli.tokens)
        await _unserved_steps_say_so(cli, unserved)


async def _unserved_steps_say_so(cli: Cli, unserved: Cli) -> None:
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
    """The CLI's reader is its token's owner; its reads go through the API (channel `api`)."""
    course = await _opened(cli, "pt-cli-reads")
    refused = await cli("events", course, "--json", member="dr-lind")
    assert refused.code == 4 and "break_glass_required" in refused.err and "emergency" in refused.err
    glass = await cli("events", course, "--json", "--break-glass", "covering_colleague", member="dr-lind")
    assert glass.code == 0, glass.err
    assert glass.json()[0]["type"] == "CourseOpened"
    ops = await cli("status", course, "--json", role="operations")
    assert ops.code == 0 and ops.json()["view"] == "operations" and "gad7" not in ops.json()
    assert (await cli("events", course, role="operations")).code == 4

    audit = await cli("audit", course, "--json", member="dr-ames")
    assert audit.code == 0, audit.err
    reads = [(r["staff_id"], r["what"], r["channel"], r["break_glass"]) for r in audit.json()["reads"]]
    assert reads == [
        ("dr-lind", "events", "api", "covering_colleague"),
        ("staff-operations", "operations", "api", None),
        ("dr-ames", "audit", "api", None),
    ]
    assert audit.json()["changes"][0]["type"] == "CourseOpened"
    text = await cli("audit", course, member="dr-ames")
    assert "BREAK-GLASS: covering_colleague" in text.out
    assert (await cli("audit", course, member="dr-lind")).code == 4


async def _stream(pg_pool: asyncpg.Pool, course: str) -> list[asyncpg.Record]:
    return await pg_pool.fetch(
        "SELECT version, type, metadata FROM events WHERE stream_id = $1 ORDER BY version", f"course-{course}"
    )


async def _settled(pg_pool: asyncpg.Pool, course: str) -> list[asyncpg.Record]:
    """The stream once the course's own opening facts are stored (bounded wait)."""
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        stream = await _stream(pg_pool, course)
        if "EligibilityChecked" in [r["type"] for r in stream]:
            return stream
        await asyncio.sleep(0.1)
    raise AssertionError("the course's opening facts were never stored")


async def test_without_a_token_the_cli_records_no_clinical_step(cli: Cli, pg_pool: asyncpg.Pool) -> None:
    """Given a shell with COURSE_ACTOR and COURSE_ROLE set but nobody signed in, when it records an
    assessment, then it is refused (exit 5, saying to sign in) and nothing reaches the stream."""
    course = await _opened(cli, "pt-cli-notoken")
    before = await _settled(pg_pool, course)
    impostor = Cli({**cli.environ, "COURSE_ACTOR": "dr-ames", "COURSE_ROLE": "prescriber"}, cli.tmp, cli.tokens)
    refused = await impostor("record", course, "assessment", "--data", cli.payload("a", story.assessment()), role="")
    assert refused.code == 5, refused.err
    assert "not signed in" in refused.err and "course login" in refused.err
    declared = await cli(
        "record", course, "assessment", "--data", cli.payload("a", story.assessment()), "--actor", "dr-ames"
    )
    assert declared.code == 2 and "token" in declared.err  # --actor is refused, not believed
    assert (await impostor("hold", course, "--reason", "patient_travel", role="")).code == 5
    assert (await impostor("events", course, role="")).code == 5
    assert await _stream(pg_pool, course) == before


async def test_a_nurses_token_cannot_record_a_prescribers_step(cli: Cli, pg_pool: asyncpg.Pool) -> None:
    course = await _opened(cli, "pt-cli-nurse")
    before = await _settled(pg_pool, course)
    as_nurse = Cli({**cli.environ, "COURSE_ROLE": "prescriber"}, cli.tmp, cli.tokens)  # whatever the shell says
    refused = await as_nurse(
        "record", course, "assessment", "--data", cli.payload("a", story.assessment()), role="nurse"
    )
    assert refused.code == 2 and "role_not_permitted" in refused.err, refused.err
    assert await _stream(pg_pool, course) == before


async def test_a_step_is_recorded_as_the_tokens_owner_whatever_course_actor_says(
    cli: Cli, pg_pool: asyncpg.Pool
) -> None:
    course = await _opened(cli, "pt-cli-owner")
    shell = Cli({**cli.environ, "COURSE_ACTOR": "dr-impostor", "COURSE_ROLE": "prescriber"}, cli.tmp, cli.tokens)
    recorded = await shell(
        "record", course, "assessment", "--data", cli.payload("a", story.assessment()), member="dr-ames"
    )
    assert recorded.code == 0, recorded.err
    stored = await _stream(pg_pool, course)
    assessed = next(r["metadata"] for r in stored if r["type"] == "AssessmentRecorded")
    assert assessed["actor"] == {"id": "dr-ames", "role": "prescriber"}
    assert assessed["signature"]["break_glass"] is None
    assert assessed["signature"]["key_id"] == os.environ["SIGNING_KEY"].split(":")[0]  # the API's key


async def test_course_login_keeps_the_token_0600_and_a_group_readable_file_is_refused(cli: Cli) -> None:
    env = {k: v for k, v in cli.environ.items() if k != "COURSE_TOKEN"}
    signed_out = Cli(env, cli.tmp, cli.tokens)
    wrong = await signed_out("login", "--token-stdin", stdin="tok_" + "0" * 40 + "\n", role="")
    assert wrong.code == 5 and "does not accept" in wrong.err
    path = Path(env["XDG_CONFIG_HOME"]) / "course" / "token"
    assert not path.exists()  # an unknown token is never kept

    login = await signed_out("login", "--token-stdin", "--json", stdin=cli.tokens["dr-ames"] + "\n", role="")
    assert login.code == 0, login.err
    assert login.json()["id"] == "dr-ames" and cli.tokens["dr-ames"] not in login.out
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    whoami = await signed_out("whoami", "--json", role="")
    assert whoami.code == 0 and whoami.json()["id"] == "dr-ames", whoami.err
    course = await _opened(cli, "pt-cli-login")
    assert (await signed_out("status", course, role="")).code == 0  # the file's token reads as dr-ames

    path.chmod(0o640)
    readable = await signed_out("whoami", role="")
    assert readable.code == 5 and "can be read by others" in readable.err and cli.tokens["dr-ames"] not in readable.err
    assert (await signed_out("logout", role="")).code == 0
    assert not path.exists()
    assert (await signed_out("whoami", role="")).code == 5


async def test_a_break_glass_step_is_signed_by_the_operators_key_and_marked_everywhere(
    cli: Cli, pg_pool: asyncpg.Pool
) -> None:
    """Given the API is down, when an operator records the prescriber's assessment with their
    break-glass key, then it is stored as dr-ames's with the reason in its signature, `course
    audit` marks it, and a log line names who, which course, which step and why."""
    course = await _opened(cli, "pt-cli-glass")
    down = Cli({**cli.environ, "API_URL": "http://127.0.0.1:9", "LOG_FORMAT": "json"}, cli.tmp, cli.tokens)
    unreachable = await down("record", course, "assessment", "--data", cli.payload("a", story.assessment()))
    assert unreachable.code == 1 and "cannot reach the clinic's API" in unreachable.err

    glass = await down(
        "record", course, "assessment", "--data", cli.payload("a", story.assessment()),
        "--break-glass", "api_unavailable", "--as", "dr-ames", "--role", "prescriber", "--json", role="",
    )  # fmt: skip
    assert glass.code == 0, glass.err
    assert glass.json()["phase"] == "preparation"
    line = next(json.loads(x) for x in glass.err.splitlines() if '"break-glass step"' in x)
    glass_key = os.environ["BREAK_GLASS_KEY"].split(":")[0]
    assert {k: line[k] for k in ("course_id", "step", "staff", "role", "key_id", "reason")} == {
        "course_id": course,
        "step": "assessment",
        "staff": "dr-ames",
        "role": "prescriber",
        "key_id": glass_key,
        "reason": "api_unavailable",
    }
    stored = await _stream(pg_pool, course)
    assessed = next(r["metadata"] for r in stored if r["type"] == "AssessmentRecorded")
    assert assessed["actor"] == {"id": "dr-ames", "role": "prescriber"}
    assert assessed["signature"]["break_glass"] == "api_unavailable"
    assert assessed["signature"]["key_id"] == glass_key

    audit = await cli("audit", course, "--json", member="dr-ames")
    assert audit.code == 0, audit.err
    change = next(c for c in audit.json()["changes"] if c["type"] == "AssessmentRecorded")
    assert (change["staff_id"], change["break_glass"], change["key_id"]) == ("dr-ames", "api_unavailable", glass_key)
    text = await cli("audit", course, member="dr-ames")
    assert f"BREAK-GLASS: api_unavailable (key {glass_key})" in text.out

    # The break-glass key is for emergencies only: a reason is required, and the rules still apply.
    no_reason = await down("record", course, "intentions", "--data", "-", "--as", "th-cole", "--role", "therapist",
                           stdin='{"goals": "x"}', role="")  # fmt: skip
    assert no_reason.code == 2
    wrong_role = await down(
        "record", course, "dosing-plan", "--data", "-", "--break-glass", "emergency_care", "--as", "rn-bell",
        "--role", "nurse", stdin=_dosing_plan(), role="",
    )  # fmt: skip
    assert wrong_role.code == 2 and "role_not_permitted" in wrong_role.err, wrong_role.err
    assert len(await _stream(pg_pool, course)) == len(stored)


def _dosing_plan() -> str:
    plan = next(c for _, c in story.preparation(datetime.now(UTC)) if c.step == "dosing-plan")  # type: ignore[attr-defined]
    return str(plan.model_dump_json(exclude={"step"}))  # type: ignore[attr-defined]


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
    view = (await cli("status", opened.json()["course_id"], "--json", member="dr-ames")).json()
    assert view["policy"] == {"name": name, "version": 1, "sha256": version["sha256"]}

    inline = await cli(*opening, "--policy", str(source), role="operations")
    assert inline.code == 2 and "course policy publish" in inline.err, inline.err
    unknown = await cli(*opening, "--policy-name", f"nowhere-{uuid4().hex[:8]}", role="operations")
    assert unknown.code == 2 and "unknown_policy" in unknown.err
    admin = await cli(*opening, role="clinic_admin")
    assert admin.code == 2 and "takes no part in courses" in admin.err


async def test_courses_are_found_by_the_patient_reference_among_those_the_reader_reads(cli: Cli) -> None:
    """Staff work from the clinic's patient reference, not from a course id: `course find REF` lists
    the reference's courses the reader may see, `course list` and `course status` show it."""
    mine = await _opened(cli, "pt-find-1")  # dr-ames's
    other = await cli(
        "open", "--patient", "pt-find-1", "--clinician", "dr-lind", "--self-pay", "--json", role="operations"
    )
    assert other.code == 0, other.err
    theirs = other.json()["course_id"]

    async def found(**who: str) -> list[str]:
        result = await cli("find", "pt-find-1", "--json", **who)
        assert result.code == 0, result.err
        return [r["course_id"] for r in result.json()]

    deadline = asyncio.get_running_loop().time() + 30
    while len(await found(role="operations")) < 2:  # visibility lags the opening
        assert asyncio.get_running_loop().time() < deadline, "the courses never became visible"
        await asyncio.sleep(0.2)
    assert await found(role="operations") == [theirs, mine]  # newest first
    assert await found(member="dr-ames") == [mine]  # dr-lind's course is not dr-ames's to list
    assert await found(member="dr-dash") == []

    table = await cli("find", "pt-find-1", member="dr-ames")
    header, row = table.out.splitlines()
    assert header.split()[:3] == ["PATIENT", "COURSE", "PHASE"]
    assert row.startswith("pt-find-1") and mine in row
    listed = await cli("list", "--clinician", "dr-ames", "--json", member="dr-ames")
    assert {r["course_id"]: r["patient_id"] for r in listed.json()}[mine] == "pt-find-1"
    status = await cli("status", mine, "--json", member="dr-ames")
    assert status.json()["patient_id"] == "pt-find-1"
    nothing = await cli("find", "no-such-patient", member="dr-ames")
    assert nothing.code == 0 and "no course of no-such-patient that you read" in nothing.out
    bad = await cli("find", "pt 1; drop", member="dr-ames")
    assert bad.code == 2, bad.err


async def test_course_status_says_why_an_ineligible_course_closed_and_events_say_each_fact(cli: Cli) -> None:
    """Given an assessment with a blood pressure of 170/105 (the policy's limit is 160/100), when the
    prescriber asks for the course's status, then it says why in words and the assessment is done;
    `--json` keeps the codes, and `course events` prints each event's facts after its type."""
    course = await _opened(cli, "pt-cli-why")
    high = story.assessment(blood_pressure={"systolic": 170, "diastolic": 105})
    assert (await cli("record", course, "assessment", "--data", cli.payload("high", high))).code == 0

    status = await cli("status", course, member="dr-ames")
    assert status.code == 0, status.err
    lines = status.out.splitlines()
    assert lines[0] == f"course {course} (patient pt-cli-why): closed (ineligible)"
    assert "  closed because: blood pressure 170/105 is at or above 160/100" in lines
    assert "  [x] assessment - ineligible" in lines
    as_json = (await cli("status", course, "--json", member="dr-ames")).json()
    assert as_json["close_reasons"] == ["bp_above_threshold"] and as_json["outcome"] == "ineligible"

    events = await cli("events", course, member="dr-ames")
    assert events.code == 0, events.err
    closed = events.out.splitlines()[-1]
    assert closed.endswith("CourseClosed  Course closed (ineligible): blood pressure 170/105 is at or above 160/100")
    assert "  AssessmentRecorded  Assessment: blood pressure 170/105, heart rate 72;" in events.out
    stream = (await cli("events", course, "--json", member="dr-ames")).json()
    assert stream[-1]["data"]["reasons"] == ["bp_above_threshold"]  # the JSON keeps the codes

    ops = await cli("status", course, role="operations")
    assert ops.code == 0 and "170/105" not in ops.out and "closed (ineligible)" in ops.out


async def test_course_status_names_the_next_reminder_with_its_zone(cli: Cli) -> None:
    course = await _opened(cli, "pt-cli-next")
    zoned = Cli({**cli.environ, "CLINIC_TIME_ZONE": "Europe/Berlin"}, cli.tmp, cli.tokens)
    status = await zoned("status", course, member="dr-ames")
    assert status.code == 0, status.err
    reminder = next(line for line in status.out.splitlines() if line.startswith("  next reminder: "))
    assert reminder.startswith("  next reminder: ") and reminder.endswith(" Europe/Berlin")
    utc = await cli("status", course, member="dr-ames")
    assert any(line.startswith("  next reminder: ") and line.endswith(" UTC") for line in utc.out.splitlines())


async def test_the_chair_side_board_lists_exactly_the_patients_in_monitoring(cli: Cli) -> None:
    """A clinic that monitors after the dose (its published policy says so): a patient dosed is on
    `course monitoring` (the nurse sees the last blood pressure, operations only times and flags),
    one not yet dosed is not, and the visibility query `--awaiting discharge` agrees."""
    name = f"monitored-{uuid4().hex[:8]}"
    published = await cli("policy", "publish", "-", "--name", name, stdin='{"monitoring": {}}', role="clinic_admin")
    assert published.code == 0, published.err

    async def opened(patient: str) -> str:
        result = await cli(
            "open", "--patient", patient, "--clinician", "dr-ames", "--self-pay", "--policy-name", name, "--json",
            role="operations",
        )  # fmt: skip
        assert result.code == 0, result.err
        course = str(result.json()["course_id"])
        assert (await cli("record", course, "assessment", "--data", cli.payload("a", story.assessment()))).code == 0
        for actor, command in story.preparation(datetime.now(UTC)):
            body = command.model_dump_json(exclude={"step"})  # type: ignore[attr-defined]
            step = command.step  # type: ignore[attr-defined]
            assert (await cli("record", course, step, "--data", "-", stdin=body, role=actor.role.value)).code == 0
        schedule = await cli("record", course, "schedule-session", "--data", "-", "--in", "1h",
                             stdin='{"session_number": 1}')  # fmt: skip
        assert schedule.code == 0, schedule.err
        vitals = '{"session_number": 1, "vitals": {"systolic": 124, "diastolic": 80, "heart_rate": 70}, '
        checked = await cli("record", course, "check-in", "--data", "-", stdin=vitals + '"ride_home_arranged": true}',
                            role="nurse")  # fmt: skip
        assert checked.code == 0, checked.err
        return course

    dosed, waiting = await opened("pt-chair-1"), await opened("pt-chair-2")
    early = await cli("record", dosed, "dosing-session", "--data", cli.payload("d", story.dose(1)), role="nurse")
    assert early.code == 2 and "monitoring_required" in early.err
    dose = '{"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5}'
    given = await cli("record", dosed, "dose-administered", "--data", "-", "--at", "now", stdin=dose, role="nurse")
    assert given.code == 0, given.err
    reading = (
        '{"session_number": 1, "blood_pressure": {"systolic": 150, "diastolic": 92}, "heart_rate": 80, "spo2": 97, '
        '"sedation": {"score": 4}, "dissociation": "present"}'
    )
    read = await cli("record", dosed, "monitoring-reading", "--data", "-", "--at", "now", stdin=reading, role="nurse")
    assert read.code == 0, read.err
    leave = '{"session_number": 1, "collected_by": "Sam", "relationship": "spouse", "patient_response": "better"}'
    refused = await cli("record", dosed, "discharge", "--data", "-", "--at", "now", stdin=leave, role="nurse")
    assert refused.code == 2 and "observation_incomplete" in refused.err and "minutes left" in refused.err

    deadline = asyncio.get_running_loop().time() + 30
    while True:  # visibility lags the course
        listed = await cli("list", "--awaiting", "discharge", "--json", role="operations")
        in_chair = {r["course_id"] for r in listed.json()} & {dosed, waiting}
        if in_chair == {dosed}:
            break
        assert asyncio.get_running_loop().time() < deadline, in_chair
        await asyncio.sleep(0.2)
    board = await cli("monitoring", "--json", role="nurse")
    assert board.code == 0, board.err
    rows = {r["course_id"]: r for r in board.json()}
    assert set(rows) & {dosed, waiting} == {dosed}
    assert rows[dosed]["last_blood_pressure"] == "150/92" and rows[dosed]["patient_id"] == "pt-chair-1"
    ops = {r["course_id"]: r for r in (await cli("monitoring", "--json", role="operations")).json()}
    assert ops[dosed]["last_blood_pressure"] is None and ops[dosed]["session_number"] == 1
    text = await cli("monitoring", role="nurse")
    assert text.out.splitlines()[0].startswith("PATIENT") and "pt-chair-1" in text.out


async def test_a_prescriber_opens_a_course_with_its_assessment_in_one_command(cli: Cli) -> None:
    opening = ("open", "--patient", "pt-cli-8", "--clinician", "dr-ames", "--self-pay")
    opened = await cli(*opening, "--assessment", cli.payload("first", story.assessment()), "--json")
    assert opened.code == 0, opened.err
    answer = opened.json()
    assert answer["first_step"]["phase"] == "preparation"
    status = await cli("status", answer["course_id"], "--json", member="dr-ames")
    assert status.code == 0 and "assessment" not in status.json()["awaiting"]
    # A payload that is not an assessment is refused before anything is opened: exit 2.
    (cli.tmp / "not-one.json").write_text('{"heart_rate": 72}')
    refused = await cli(*opening, "--assessment", str(cli.tmp / "not-one.json"))
    assert refused.code == 2 and "blood" in refused.err.lower(), refused.err
