"""`course`: the command staff and scripts use. Exit 0 ok, 2 rejected/invalid, 3 unknown course, 4 read
refused, 5 not signed in, 1 else.

Staff commands (open, record, hold, release, withdraw, reassign, status, events, list, audit,
export) act as the person whose token the CLI carries (`course login`, or COURSE_TOKEN), through the
clinic's API: it authenticates them, signs their steps and records their reads. Operator commands that act
as the system (dev, worker, setup-cluster, verify, retry, resync, staff, ...) talk to Temporal and
PostgreSQL directly. An operator records a step without the API only with their own break-glass
key (`course record ... --break-glass REASON --as STAFF_ID --role ROLE`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from pydantic import BaseModel, ValidationError

from application.courses import CourseClient, CourseNotFound, StepRejected, StepTimedOut, parse_course_id
from application.queries import BadFilter, course_query
from application.reads import ReadRefused
from application.request_ids import derived_request_id
from cli import export_cmd, login_cmd, notifications_cmd, policy_cmd, reconcile_cmd, report_cmd, staff_cmd, when
from cli.edge import ApiUnavailable, RequestInvalid, StaffApi
from cli.tables import table
from cli.tokens import NotSignedIn, read_token
from course.access import BreakGlassReason
from course.commands import (
    STEPS,
    Actor,
    Condition,
    PlaceHold,
    Reassign,
    ReleaseHold,
    Role,
    Withdraw,
)
from course.explain import timeline_in_words
from course.provenance import BreakGlassStep
from course.publication import MAX_POLICY_VERSION, POLICY_ON_THE_SERVER, PolicyRefused, check_name
from course.reasons import at_time
from course.state import Phase
from course.view import CourseView, OperationsView
from course.wording import json_in_words, problems_in_words
from trust.keys import NoBreakGlassKey
from worker.settings import Settings
from workflows.inputs import workflow_id

OK, FAILED, INVALID, UNKNOWN_COURSE, REFUSED, NOT_SIGNED_IN = 0, 1, 2, 3, 4, 5
# Stands in for a relative time in a derived request id (the option as written is hashed instead).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = structlog.get_logger(__name__)


class InvalidInput(Exception):
    """Bad input caught before anything was sent: exit 2."""


def describe_validation(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Each problem as a sentence with the field in words (course/wording.py). The person at this
    terminal typed the values, so a reading is named ("400 mmHg is not a plausible ..."); this text
    goes to their stderr, never to a log."""
    problems = problems_in_words(error.errors(), model, echo=True)
    return "not recorded: " + " ".join(problems.values())


def _no_self_declared_actor(args: argparse.Namespace) -> None:
    """The token decides who acts: a name given on the command line is refused, not believed.
    Only a break-glass step names its staff member (--as/--role), signed by the operator's key."""
    glass = getattr(args, "break_glass", None) and hasattr(args, "as_staff")
    declared = [
        flag
        for flag, given in (
            ("--actor", args.actor),
            ("--role", args.role and not glass),
            ("--as", getattr(args, "as_staff", None) and not glass),
        )
        if given
    ]
    if declared:
        raise InvalidInput(
            f"{' and '.join(declared)} no longer decide who acts: your staff token does "
            "(`course whoami` shows whose it is; `course login` signs in). Operators recording without the "
            "API use --break-glass REASON --as STAFF_ID --role ROLE."
        )


@contextlib.asynccontextmanager
async def _api(settings: Settings) -> AsyncIterator[StaffApi]:
    """The clinic's API, as the staff member whose token this is (NotSignedIn: none to use)."""
    token = read_token()
    async with StaffApi.session(login_cmd.api_url(settings), token) as api:
        yield api


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.json:
        if isinstance(value, BaseModel):
            print(value.model_dump_json(indent=2))
        else:
            print(json.dumps(value, indent=2, default=str))
    else:
        print(text)


async def _client(settings: Settings) -> CourseClient:
    """Temporal, for operator commands that act as the system; never a staff signing key."""
    from trust import keys  # noqa: PLC0415
    from worker.main import connect  # noqa: PLC0415 - keep `course record --schema` instant

    temporal = await connect(settings)
    keys.configure(ring=keys.ring(), signer=None)  # connect() loads SIGNING_KEY for edges; the CLI is none
    return CourseClient(temporal, settings.course_task_queue, step_deadline=settings.step_deadline_seconds)


def _read_payload(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"no payload file at {source}")
    return path.read_text()


async def cmd_open(args: argparse.Namespace, settings: Settings) -> int:

    if args.policy:
        raise InvalidInput(
            POLICY_ON_THE_SERVER.replace("`policy_name`, `policy_version`", "--policy-name, --policy-version")
        )
    if args.policy_name is not None:
        try:
            check_name(args.policy_name)
        except PolicyRefused as error:
            raise InvalidInput(f"{error.message} ({error.code})") from None
    if args.policy_version is not None and not 1 <= args.policy_version <= MAX_POLICY_VERSION:
        raise InvalidInput("--policy-version is a published version (1, 2, ...); `course policy list` shows them")
    if not args.self_pay and (args.payer is None) != (args.member is None):
        raise InvalidInput("--payer and --member go together (or use --self-pay)")
    _no_self_declared_actor(args)
    try:
        course_id = uuid.UUID(args.course_id) if args.course_id else uuid.uuid4()
    except ValueError:
        raise InvalidInput("--course-id must be a UUID") from None
    body = {
        "course_id": str(course_id),
        "patient_id": args.patient,
        "clinician_id": args.clinician,
        "therapist_id": args.therapist,
        "condition": Condition(args.condition).value if args.condition else None,
        "planned_sessions": args.sessions,
        "payer_id": args.payer,
        "member_ref": args.member,
        "self_pay": args.self_pay or args.payer is None,
    }
    if args.policy_name is not None:
        body["policy_name"] = args.policy_name
    if args.policy_version is not None:
        body["policy_version"] = args.policy_version
    if getattr(args, "assessment", None) is not None:
        # The first step with the opening, in one round trip (an update-with-start); refused like
        # `course record COURSE_ID assessment --data FILE` would refuse it.
        try:
            assessment = STEPS["assessment"].model_validate_json(_read_payload(args.assessment), extra="forbid")
        except ValidationError as error:
            raise InvalidInput(describe_validation(error, STEPS["assessment"])) from None
        body["assessment"] = assessment.model_dump(mode="json", exclude={"step"})
    async with _api(settings) as api:  # the opener is the token's owner
        opened = await api.open(body)
    first = opened.get("first_step")
    text = opened["course_id"] + (
        f"\nrecorded assessment: {first['phase']}, waiting for {', '.join(first['awaiting']) or 'nothing'} "
        f"(version {first['version']})"
        if first
        else ""
    )
    _print(args, {"course_id": opened["course_id"], "workflow_id": workflow_id(course_id), "first_step": first}, text)
    return OK


async def _record(args: argparse.Namespace, settings: Settings, command: Any) -> int:
    _no_self_declared_actor(args)
    if args.break_glass:
        return await _record_break_glass(args, settings, command)
    course_id = parse_course_id(args.course_id)
    wait = settings.step_deadline_seconds if args.wait is None else args.wait
    async with _api(settings) as api:
        key, derived = args.request_id, False
        if key is None:
            # Derived from the course, step, payload and the token's owner: the same command sent
            # again is the same request (the API adds the course's moment for steps that recur).
            # A time given as --in/--ago/--at is part of the command as written: run again a minute
            # later it resolves to another instant, but it is the same request.
            relative: when.RelativeTime | None = getattr(args, "relative", None)
            as_written = command if relative is None else command.model_copy(update={relative.field: _EPOCH})
            me = await api.me()
            key = derived_request_id(course_id, as_written, me, relative.written if relative else "")
            derived = True
        course = await api.record(course_id, command, key, derived=derived, wait=wait)
    _print(
        args,
        course,
        f"recorded {command.step}: {course.phase.value}, waiting for "
        f"{', '.join(course.awaiting) or 'nothing'} (version {course.version})",
    )
    return OK


async def _record_break_glass(args: argparse.Namespace, settings: Settings, command: Any) -> int:
    """No API: the operator's own break-glass key signs, with the reason, as the staff member who
    took the step; workers accept it against the break-glass keys only, and it shows as such in
    the stored event's signature, in `course audit` and in this log line."""
    from trust import keys  # noqa: PLC0415

    if not args.as_staff or not args.role:
        raise InvalidInput("a break-glass step names who took it: --as STAFF_ID --role ROLE")
    try:
        actor = Actor(id=args.as_staff, role=Role(args.role))
    except (ValidationError, ValueError):
        raise InvalidInput(f"--as must be a staff id and --role one of {', '.join(r.value for r in Role)}") from None
    signer = keys.break_glass_signer(settings)
    from worker.main import connect  # noqa: PLC0415

    client = CourseClient(
        await connect(settings),
        settings.course_task_queue,
        step_deadline=settings.step_deadline_seconds,
        signer=signer,
        break_glass=args.break_glass,
    )
    log.warning(
        "break-glass step",
        course_id=str(parse_course_id(args.course_id)),
        step=command.step,
        staff=actor.id,
        role=actor.role.value,
        key_id=signer.key_id,
        reason=args.break_glass,
    )
    await client.record(args.course_id, command, actor, args.request_id, within=args.wait)
    course = await client.status(args.course_id)
    _print(
        args,
        course,
        f"recorded {command.step} (break-glass: {args.break_glass}, key {signer.key_id}): {course.phase.value}, "
        f"waiting for {', '.join(course.awaiting) or 'nothing'} (version {course.version})",
    )
    return OK


async def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    if args.schema:
        step = args.schema
        if step not in STEPS:
            raise InvalidInput(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        schema = STEPS[step].model_json_schema()
        print(json.dumps(schema, indent=2))
        return OK
    if len(args.targets) != 2:
        raise InvalidInput("usage: course record COURSE_ID STEP --data FILE|-  (or --schema STEP)")
    args.course_id, step = args.targets
    if step not in STEPS:
        raise InvalidInput(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    if args.data is None:
        raise InvalidInput("pass the payload with --data FILE or --data - (standard input)")
    parse_course_id(args.course_id)
    raw = _read_payload(args.data)
    try:
        options = {name: getattr(args, name, None) for name in ("in_", "ago", "at")}
        relative = when.resolve(step, datetime.now(UTC), **options)
    except when.BadTime as error:
        raise InvalidInput(str(error)) from None
    if relative is not None:
        raw = _with_time(raw, relative)
    try:
        # A person's payload: an unknown field is a typo, refused (course/messages.py).
        command = STEPS[step].model_validate_json(raw, extra="forbid")
    except ValidationError as error:
        raise InvalidInput(describe_validation(error, STEPS[step])) from None
    args.relative = relative
    return await _record(args, settings, command)


def _with_time(raw: str, relative: when.RelativeTime) -> str:
    """The payload with the step's time filled in from --in, --ago or --at."""
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidInput(json_in_words(f"{error.msg} at line {error.lineno} column {error.colno}")) from None
    if not isinstance(payload, dict):
        raise InvalidInput('the payload must be a JSON object, like {"session_number": 1}')
    if relative.field in payload:
        raise InvalidInput(f"the payload already gives {relative.field}; drop it or drop {relative.written.split()[0]}")
    payload[relative.field] = relative.at.isoformat()
    return json.dumps(payload)


async def cmd_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    command: BaseModel
    try:
        match args.command:
            case "hold":
                command = PlaceHold(reason=args.reason)
            case "release":
                command = ReleaseHold()
            case "withdraw":
                command = Withdraw(reason=args.reason)
            case _:
                command = Reassign(clinician_id=args.clinician, therapist_id=args.therapist)
    except ValidationError as error:
        raise InvalidInput(describe_validation(error)) from None
    return await _record(args, settings, command)


async def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Re-check stored events against the public keys (trust/verify.py)."""
    from activities.event_store import PostgresEventStore  # noqa: PLC0415
    from trust import keys  # noqa: PLC0415
    from trust.verify import verify_stream  # noqa: PLC0415
    from worker.database import create_pool, database_url  # noqa: PLC0415
    from workflows.inputs import workflow_id  # noqa: PLC0415

    if not args.all and not args.course_id:
        raise InvalidInput("name a course (course verify COURSE_ID) or verify every course (--all)")
    keys.configure_from_settings(settings)
    ring = keys.ring()
    assert ring is not None  # configure_from_settings always sets one
    pool = await create_pool(database_url(settings.database_url, settings.course_data_dir), max_size=2)
    try:
        store = PostgresEventStore(pool)
        if args.all:
            streams = [r["stream_id"] for r in await pool.fetch("SELECT DISTINCT stream_id FROM events ORDER BY 1")]
        else:
            streams = [workflow_id(parse_course_id(args.course_id))]
        results = [verify_stream(stream, await store.read(stream), ring) for stream in streams]
    finally:
        await pool.close()
    failed = [r for r in results if not r.ok or (args.strict and r.unsigned_steps)]
    lines = []
    for r in results:
        course = r.stream_id.removeprefix("course-")
        counts = (
            f"{r.events} events: {r.signed_steps} signed steps proven, {r.timer_batches} timer batches re-derived, "
            f"{r.system_facts} system facts, {r.unsigned_steps} unsigned steps"
        )
        verdict = "ok" if r.ok else f"FAILED at version {r.failed_at}: {r.code} ({r.detail})"
        lines.append(f"{course}  {verdict}; {counts}")
    _print(args, [r.__dict__ for r in results], "\n".join(lines) or "no courses")
    return FAILED if failed else OK


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    if args.command == "retry":
        await client.retry(args.course_id)
        text = "asked the course to retry what it could not record; `course status` shows when it has"
    else:
        await client.resync(args.course_id)
        text = "asked the course to load its stream from the event store and adopt it"
    _print(args, {"course_id": args.course_id, "sent": args.command}, text)
    return OK


def _reason(args: argparse.Namespace) -> BreakGlassReason | None:
    return BreakGlassReason(args.break_glass) if getattr(args, "break_glass", None) else None


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    # Reads go through the API: decided by course/access.py and recorded before they are shown.
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        course = await api.status(parse_course_id(args.course_id), _reason(args))
    _print(args, course, status_text(course, _zone(settings)))
    return OK


def status_text(course: CourseView | OperationsView, zone: tzinfo) -> str:
    """The checklist as `course status` prints it; for the care team, why in words (the JSON keeps codes)."""
    patient = f" (patient {course.patient_id})" if course.patient_id else ""
    outcome = f" ({course.outcome})" if course.outcome else ""
    lines = [f"course {course.course_id}{patient}: {course.phase.value}{outcome}"]
    if isinstance(course, CourseView):
        lines += [f"  closed because: {words}" for words in course.close_reasons_in_words]
        if course.hold_reason_in_words:
            lines.append(f"  on hold: {course.hold_reason_in_words}")
        if course.review_reasons_in_words:
            lines.append(f"  review needed before the next dose: {'; '.join(course.review_reasons_in_words)}")
        for deferred in course.deferred_sessions:
            deferred_at = at_time(deferred.at, zone)
            lines.append(f"  session {deferred.session_number} deferred {deferred_at}: {deferred.in_words}")
    lines += [
        f"  [{'x' if s.status == 'done' else ' '}] {s.name}" + (f" - {s.why}" if s.why else "") for s in course.steps
    ]
    lines.append(f"  waiting for: {', '.join(course.awaiting) or 'nothing'}")
    if course.next_due:
        lines.append(f"  next: {course.next_due.what} at {at_time(course.next_due.at, zone)}")
    if course.next_reminder:
        what = course.next_reminder.what.removeprefix("reminder: ")
        lines.append(f"  next reminder: {what} at {at_time(course.next_reminder.at, zone)}")
    if isinstance(course, CourseView):
        lines.append(f"  GAD-7: baseline {course.gad7.baseline}, latest {course.gad7.latest}")
    else:
        lines.append("  (operations view: the clinical record is for the care team)")
    return "\n".join(lines)


def _zone(settings: Settings) -> tzinfo:
    """The clinic's zone (CLINIC_TIME_ZONE) for the times a person reads; UTC when it is unset or unknown."""
    try:
        return ZoneInfo(settings.clinic_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


async def cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        rows = await api.events(parse_course_id(args.course_id), _reason(args))
    # Each event's facts in words after its type (the care team's terminal); --json keeps the data.
    words = timeline_in_words(rows, _zone(settings))
    text = "\n".join(
        f"{r['version']:>4}  {r['occurred_at']}  {r['type']}  {line}" for r, line in zip(rows, words, strict=True)
    )
    _print(args, rows, text)
    return OK


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """One course as a FHIR Bundle, through the API as the token's owner (a read, recorded)."""
    _no_self_declared_actor(args)
    if not args.fhir:
        raise InvalidInput("say the format: `course export COURSE_ID --fhir` (FHIR R4B JSON is the one there is)")
    if args.course_id is None and (args.since is not None or args.out is not None):
        return await export_cmd.run(args, settings)  # every course changed since a time, as NDJSON files
    if args.course_id is None:
        raise InvalidInput(
            "name the course: `course export COURSE_ID --fhir`, or export in bulk: `--fhir --since TIME --out DIR`"
        )
    if args.since is not None or args.out is not None:
        # One course is exported whole and printed: a time or a folder would be silently ignored.
        raise InvalidInput(
            "--since and --out are for the bulk export (`course export --fhir --since TIME --out DIR`, no "
            "COURSE_ID); one course prints its whole Bundle: `course export COURSE_ID --fhir`"
        )
    async with _api(settings) as api:
        bundle = await api.fhir(parse_course_id(args.course_id), _reason(args))
    print(json.dumps(bundle, indent=2))
    return OK


def _flags(row: dict[str, Any]) -> str:
    return ",".join(name for name in ("overdue", "on_hold", "needs_review") if row[name]) or "-"


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        query = course_query(
            phase=args.phase,
            awaiting=args.awaiting,
            clinician=args.clinician,
            therapist=args.therapist,
            overdue=args.overdue,
            on_hold=args.on_hold,
            needs_review=args.needs_review,
            include_closed=args.all,
        )
    except BadFilter as error:
        raise InvalidInput(str(error)) from None
    if args.query:
        print(query)
        return OK
    _no_self_declared_actor(args)
    params = {
        "phase": args.phase,
        "awaiting": args.awaiting,
        "clinician": args.clinician,
        "therapist": args.therapist,
        "overdue": args.overdue,
        "on_hold": args.on_hold,
        "needs_review": args.needs_review,
        "all": args.all,
        "limit": args.limit,
    }
    async with _api(settings) as api:
        rows = await api.listing({name: value for name, value in params.items() if value not in (None, False)})
    _print(args, rows, course_table(rows) if rows else "no courses match")
    return OK


async def cmd_find(args: argparse.Namespace, settings: Settings) -> int:
    """The courses of one patient reference that the token's owner reads, newest first."""
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        rows = await api.find(args.patient_ref)
    _print(args, rows, course_table(rows) if rows else f"no course of {args.patient_ref} that you read")
    return OK


async def cmd_monitoring(args: argparse.Namespace, settings: Settings) -> int:
    """The chair-side board: every patient in monitoring after a dose that the token's owner reads."""
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        rows = await api.monitoring()
    header = (
        "PATIENT",
        "COURSE",
        "SESSION",
        "SINCE DOSE",
        "NEXT READING (UTC)",
        "DISCHARGE FROM (UTC)",
        "LAST BP",
        "FLAGS",
    )

    def hm(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%H:%M") if moment else "-"

    cells = [
        (
            r.patient_id or "-",
            r.course_id[:8],
            str(r.session_number or "-"),
            "-" if r.minutes_since_dose is None else f"{r.minutes_since_dose} min",
            hm(r.next_reading_due),
            hm(r.discharge_from),
            r.last_blood_pressure or "-",
            ",".join(r.flags) or "-",
        )
        for r in rows
    ]
    _print(args, [r.model_dump(mode="json") for r in rows], table(header, cells) if rows else "nobody in monitoring")
    return OK


def course_table(rows: list[dict[str, Any]]) -> str:
    """Courses as columns with headers, each as wide as its longest cell."""
    header = ("PATIENT", "COURSE", "PHASE", "WAITING FOR", "CLINICIAN", "THERAPIST", "NEXT DUE (UTC)", "FLAGS")
    cells = [
        (
            r.get("patient_id") or "-",
            r["course_id"],
            r["phase"] or r["status"] or "-",
            ", ".join(r["awaiting"]) or "-",
            r["clinician_id"] or "-",
            r["therapist_id"] or "-",
            (r["next_due_at"] or "-")[:16].replace("T", " "),
            _flags(r),
        )
        for r in rows
    ]
    return table(header, cells)


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Who read the course and who changed it (operations and the course's prescriber and therapist)."""
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        trail = await api.audit(parse_course_id(args.course_id))
    lines = ["read:"] + [
        f"  {r.read_at.isoformat()}  {r.staff_id} ({r.role.value})  {r.what:<13} {r.channel:<7}"
        + (f"  BREAK-GLASS: {r.break_glass.value}" if r.break_glass else "")
        for r in trail.reads
    ]
    lines.append("changed:")
    lines += [
        f"  {c.version:>4}  {c.occurred_at.isoformat()}  {c.staff_id} ({c.role.value})  {c.type}"
        + ("" if c.signed else "  (unsigned)")
        + (f"  BREAK-GLASS: {c.break_glass} (key {c.key_id})" if c.break_glass else "")
        for c in trail.changes
    ]
    _print(args, trail, "\n".join(lines))
    return OK


async def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Through the API, as the token's owner: narrowed to the courses they read, the named ones recorded."""
    _no_self_declared_actor(args)
    async with _api(settings) as api:
        board = await api.dashboard()
    phases = board.open_courses_by_phase
    lines = ["open courses by phase:"] + [f"  {phase:<12} {count}" for phase, count in phases.items()]
    lines.append(f"on hold: {board.on_hold}")
    lines.append(f"overdue ({len(board.overdue)}):" + "".join(f"\n  {c}" for c in board.overdue))
    lines.append(f"needs review ({len(board.needs_review)}):" + "".join(f"\n  {c}" for c in board.needs_review))
    _print(args, board, "\n".join(lines))
    return OK


async def cmd_setup_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from worker.cluster import register_search_attributes  # noqa: PLC0415
    from worker.schedules import ensure_schedules  # noqa: PLC0415

    client = await _client(settings)
    added = await register_search_attributes(client.temporal, settings.temporal_namespace)
    schedules = await ensure_schedules(client.temporal, settings)
    text = (
        f"registered {len(added)} search attribute(s): {', '.join(added) or '-'}\n"
        + "schedules: "
        + ", ".join(f"{name} {outcome}" for name, outcome in schedules.items())
    )
    _print(args, {"registered": added, "schedules": schedules}, text)
    return OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from worker.database import database_url, migrate  # noqa: PLC0415

    applied = asyncio.run(migrate(database_url(settings.database_url, settings.course_data_dir)))
    _print(args, {"applied": applied}, f"applied {len(applied)} migration(s): {', '.join(applied) or '-'}")
    return OK


def _self_declared(parser: argparse.ArgumentParser, *, role: bool = True) -> None:
    """Kept only to refuse them with a sentence: the token decides who acts."""
    parser.add_argument("--actor", help=argparse.SUPPRESS)
    if role:
        parser.add_argument("--role", help=argparse.SUPPRESS)


def _break_glass(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--break-glass",
        choices=[r.value for r in BreakGlassStep],
        metavar="REASON",
        help="operators only, when the API cannot be used: record the step with your own break-glass key "
        "(BREAK_GLASS_KEY), marked as such with this reason: " + ", ".join(r.value for r in BreakGlassStep),
    )
    parser.add_argument("--as", dest="as_staff", metavar="STAFF_ID", help="with --break-glass: who took the step")
    parser.add_argument(
        "--role", choices=[r.value for r in Role], help="with --break-glass: the role of the staff member named by --as"
    )


def _common(parser: argparse.ArgumentParser, *, acts: bool = False, records: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if acts:
        if records:
            _break_glass(parser)
            _self_declared(parser, role=False)
        else:
            _self_declared(parser)
        parser.add_argument(
            "--request-id",
            help="the Idempotency-Key: a retried command applies once (default: derived from the course, step, "
            "payload and the token's owner, so the same command sent again is applied once; give a new id to "
            "record the very same payload again on purpose)",
        )
    if records:
        parser.add_argument(
            "--wait",
            type=float,
            metavar="SECONDS",
            help="how long to wait for the course's answer (default $STEP_DEADLINE_SECONDS, 30); then exit 1 "
            "naming the request id to retry with, or saying no worker is serving courses",
        )


def _reader(parser: argparse.ArgumentParser, *, break_glass: bool = True) -> None:
    """The reader is the token's owner, recorded in the access log with the read."""
    _self_declared(parser)
    if break_glass:
        parser.add_argument(
            "--break-glass",
            choices=[r.value for r in BreakGlassReason],
            metavar="REASON",
            help="read a course outside your routine access, with a reason recorded with the read: "
            + ", ".join(r.value for r in BreakGlassReason),
        )


def _read_parsers(sub: Any) -> None:
    for name in ("status", "events"):
        reader = sub.add_parser(name, help=f"show a course's {name} (recorded in the access log)")
        _common(reader)
        _reader(reader)
        reader.add_argument("course_id")
    exporter = sub.add_parser("export", help="a course as FHIR R4B resources (a Bundle, as JSON)")
    _common(exporter)
    _reader(exporter)
    exporter.add_argument("course_id", nargs="?")
    exporter.add_argument("--fhir", action="store_true", help="as FHIR R4B JSON (required: the one format)")
    export_cmd.add_arguments(exporter)  # without COURSE_ID: the bulk export (operations)
    auditor = sub.add_parser("audit", help="who read a course and who changed it")
    _common(auditor)
    _reader(auditor, break_glass=False)
    auditor.add_argument("course_id")


def _verify_parser(sub: Any) -> None:
    verifier = sub.add_parser("verify", help="re-check every stored event of a course against the signing keys")
    _common(verifier)
    verifier.add_argument("course_id", nargs="?")
    verifier.add_argument("--all", action="store_true", help="every course in the event store")
    verifier.add_argument("--strict", action="store_true", help="fail on steps stored before signing too")


def _open_parser(sub: Any) -> None:
    opener = sub.add_parser("open", help="open a treatment course; prints its id")
    _common(opener, acts=True)
    opener.add_argument("--patient", required=True, help="the clinic's pseudonymous patient id")
    opener.add_argument("--clinician", required=True)
    opener.add_argument("--therapist")
    opener.add_argument("--condition", choices=[c.value for c in Condition])
    opener.add_argument("--sessions", type=int)
    opener.add_argument("--payer")
    opener.add_argument("--member")
    opener.add_argument("--self-pay", action="store_true")
    opener.add_argument("--course-id")
    opener.add_argument("--policy-name", metavar="NAME", help="a published policy (default $CLINIC_POLICY, `default`)")
    opener.add_argument("--policy-version", metavar="N", type=int, help="that version (default: its current one)")
    opener.add_argument(
        "--assessment",
        metavar="FILE|-",
        help="record the assessment with the opening, in one round trip (payload as for `course record ID assessment`)",
    )
    opener.add_argument("--policy", help=argparse.SUPPRESS)  # refused with why: policies live on the server


def _board_parser(sub: Any) -> None:
    """The operations and ward views: find, the chair-side board, the dashboard."""
    finder = sub.add_parser("find", help="the courses of a patient reference (the clinic's id given at opening)")
    _common(finder)
    _reader(finder, break_glass=False)
    finder.add_argument("patient_ref", metavar="PATIENT_REF")
    board = sub.add_parser("monitoring", help="the chair-side board: patients in monitoring after a dose")
    _common(board)
    _reader(board, break_glass=False)
    dashboard = sub.add_parser("dashboard", help="counts per phase, overdue items, courses needing review")
    _common(dashboard)
    _reader(dashboard, break_glass=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        ("dev", "run everything locally: Temporal dev server + UI, PostgreSQL, worker"),
        ("worker", "run a worker"),
        ("migrate", "apply database migrations"),
        ("setup-cluster", "register the search attributes and create the clinic's schedules on a Temporal cluster"),
        ("codec-server", "serve /decode and /encode so authorised staff read payloads in the Temporal UI"),
        ("api", "serve the HTTP API and the clinician console (API_HOST:API_PORT, default 127.0.0.1:8082)"),
    ]:
        _common(sub.add_parser(name, help=text))

    _open_parser(sub)

    recorder = sub.add_parser("record", help="record a step: course record COURSE_ID STEP --data FILE")
    _common(recorder, acts=True, records=True)
    recorder.add_argument("targets", nargs="*", metavar="COURSE_ID STEP")
    recorder.add_argument("--data", help="payload JSON file, or - for standard input")
    recorder.add_argument("--schema", metavar="STEP", help="print the JSON schema of a step's payload")
    times = ", ".join(f"{step}'s {field}" for step, field in when.TIME_FIELDS.items())
    recorder.add_argument(
        "--in", dest="in_", metavar="DURATION", help=f"the step's time from now, like 1h or 2d ({times})"
    )
    recorder.add_argument("--ago", metavar="DURATION", help="the step's time before now, like 30m or 1d")
    recorder.add_argument("--at", metavar="TIME", help="the step's time: now, or ISO 8601 with its zone")

    _read_parsers(sub)
    lister = sub.add_parser("list", help="list the courses you read (the same queries work in the Temporal UI)")
    _common(lister)
    _reader(lister, break_glass=False)
    lister.add_argument("--phase", choices=[p.value for p in Phase])
    lister.add_argument("--awaiting", metavar="STEP", help="courses waiting for this step")
    lister.add_argument("--clinician")
    lister.add_argument("--therapist")
    lister.add_argument("--overdue", action="store_true")
    lister.add_argument("--on-hold", action="store_true")
    lister.add_argument("--needs-review", action="store_true")
    lister.add_argument("--all", action="store_true", help="include closed courses")
    lister.add_argument("--query", action="store_true", help="print the visibility query and stop")
    lister.add_argument("--limit", type=int, default=200)
    notifications_cmd.add_parser(sub)
    staff_cmd.add_parser(sub)
    login_cmd.add_parsers(sub)
    policy_cmd.add_parser(sub)
    reconcile_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    _board_parser(sub)

    _verify_parser(sub)
    for name, text in (
        ("retry", "a course that needs attention tries again now instead of after its pause"),
        ("resync", "a course loads its stream's head from the event store and adopts it"),
    ):
        signal = sub.add_parser(name, help=text)
        _common(signal)
        signal.add_argument("course_id")

    for name in ("hold", "release", "withdraw", "reassign"):
        step = sub.add_parser(name, help=f"{name} a course")
        _common(step, acts=True, records=True)
        step.add_argument("course_id")
        if name in ("hold", "withdraw"):
            step.add_argument("--reason", required=True, help="reason code, e.g. patient_request")
        if name == "reassign":
            step.add_argument("--clinician")
            step.add_argument("--therapist")
    return parser


_ASYNC: dict[str, Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]] = {
    "open": cmd_open,
    "record": cmd_record,
    "status": cmd_status,
    "events": cmd_events,
    "audit": cmd_audit,
    "export": cmd_export,
    "list": cmd_list,
    "find": cmd_find,
    "monitoring": cmd_monitoring,
    "hold": cmd_lifecycle,
    "release": cmd_lifecycle,
    "withdraw": cmd_lifecycle,
    "reassign": cmd_lifecycle,
    "retry": cmd_signal,
    "verify": cmd_verify,
    "resync": cmd_signal,
    "setup-cluster": cmd_setup_cluster,
    "dashboard": cmd_dashboard,
    "notifications": notifications_cmd.run,
    "staff": staff_cmd.run,
    "login": login_cmd.login,
    "logout": login_cmd.logout,
    "whoami": login_cmd.whoami,
    "policy": policy_cmd.run,
    "reconcile": reconcile_cmd.run,
    "report": report_cmd.run,
    "rebuild-outcomes": report_cmd.run,
}


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    from worker.logging import configure_logging  # noqa: PLC0415

    configure_logging(settings.log_format, "WARNING" if args.command in _ASYNC else settings.log_level)
    try:
        if args.command == "dev":
            from worker.dev import run_dev  # noqa: PLC0415

            return run_dev(settings)
        if args.command == "worker":
            from worker.main import main as worker_main  # noqa: PLC0415

            worker_main()
        if args.command == "codec-server":
            from worker.codec_server import main as codec_main  # noqa: PLC0415

            codec_main()
            return OK
        if args.command == "api":
            from api.server import main as api_main  # noqa: PLC0415

            api_main()
            return OK
        if args.command == "migrate":
            return cmd_migrate(args, settings)
        return asyncio.run(_ASYNC[args.command](args, settings))
    except (InvalidInput, RequestInvalid, export_cmd.BulkExportInvalid) as error:
        print(f"error: {error}", file=sys.stderr)
        return INVALID
    except NotSignedIn as error:
        print(f"error: {error}", file=sys.stderr)
        return NOT_SIGNED_IN
    except (ApiUnavailable, NoBreakGlassKey) as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    except StepRejected as rejected:
        print(f"rejected ({rejected.code}): {rejected.message}", file=sys.stderr)
        return INVALID
    except ReadRefused as refused:
        print(f"refused ({refused.code}): {refused.sentence}", file=sys.stderr)
        return REFUSED
    except CourseNotFound as missing:
        print(f"error: {missing}", file=sys.stderr)
        return UNKNOWN_COURSE
    except StepTimedOut as unanswered:
        print(f"error: {unanswered}", file=sys.stderr)
        return FAILED
    except Exception as error:  # noqa: BLE001 - anything else is exit 1 with its kind, not a traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return FAILED


def main() -> None:
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio issue #300: a process that ran SDK code can crash at interpreter exit.
    os._exit(code)
