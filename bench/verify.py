"""What signing costs: one signature made and checked, and `course verify` per thousand events.

    python -m bench.verify [--quick] [--courses 50]

Pure CPU, no services: the streams are made by the real decider, signed by a real Ed25519 key,
exactly as the workflow would store them (the signed command on each step's first event; timer
facts and system facts unsigned), then verified by `trust.verify.verify_stream`. The signature
check is also what the update validator adds to each step.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import common
from bench.courses import SCHEDULE_AHEAD, full_course, opening, shrunk_policy
from course.commands import SYSTEM_ACTOR, InsuranceStatus, RecordEligibility, Tick
from course.decider import decide
from course.events import EventEnvelope, EventMetadata
from course.state import CourseState, fold
from trust.signing import KeyRing, Signer
from trust.verify import verify_stream
from workflows.inputs import workflow_id


def signed_course(signer: Signer, start: datetime) -> list[EventEnvelope]:
    request = opening()
    stream, run_id = workflow_id(request.course_id), str(uuid.uuid4())
    stored: list[EventEnvelope] = []
    state: CourseState | None = None
    now = start

    def commit(events: list, actor: object, command: object | None = None) -> None:  # type: ignore[type-arg]
        nonlocal state
        base = state.version if state is not None else 0
        update_id = f"{getattr(command, 'step', 'x')}-{uuid.uuid4()}" if command is not None else None
        metadata = EventMetadata(actor=actor, update_id=update_id, workflow_id=stream, run_id=run_id)
        first = metadata
        if command is not None and update_id is not None:
            payload = command.model_dump(mode="json")  # type: ignore[attr-defined]
            signature = signer.sign(
                course_id=str(request.course_id),
                update_id=update_id,
                actor_id=actor.id,  # type: ignore[attr-defined]
                role=actor.role.value,  # type: ignore[attr-defined]
                step=payload["step"],
                payload=payload,
                now=now,
            )
            metadata = metadata.model_copy(update={"signature": signature})
            first = metadata.model_copy(update={"command": payload})
        envelopes = [
            EventEnvelope(
                event_id=uuid.uuid4(),
                stream_id=stream,
                version=base + i,
                occurred_at=now,
                metadata=first if i == 1 else metadata,
                event=e,
            )
            for i, e in enumerate(events, start=1)
        ]
        stored.extend(envelopes)
        state = fold(state, envelopes)

    opened = request.opened()
    commit([opened], request.opened_by)
    assert state is not None
    commit(
        decide(state, RecordEligibility(status=InsuranceStatus.NOT_COVERED, reason="self_pay"), SYSTEM_ACTOR, now),
        SYSTEM_ACTOR,
    )
    for step in full_course():
        now += timedelta(seconds=5)
        actor, command = step.build(now)
        commit(decide(state, command, actor, now), actor, command)
        if step.reminders:
            now += SCHEDULE_AHEAD - shrunk_policy().session_reminder_lead
            commit(decide(state, Tick(), SYSTEM_ACTOR, now), SYSTEM_ACTOR)
    return stored


def main_sync(args: argparse.Namespace) -> None:
    report = common.Report("verify", args)
    courses = args.courses or (5 if args.quick else 50)
    signer = Signer.generate("bench")
    ring = KeyRing.from_setting(signer.public_setting())
    start = datetime(2026, 11, 25, 9, tzinfo=UTC)
    streams = [signed_course(signer, start + timedelta(minutes=i)) for i in range(courses)]
    events = sum(len(s) for s in streams)

    began = time.perf_counter()
    results = [verify_stream(s[0].stream_id, s, ring) for s in streams]
    seconds = time.perf_counter() - began
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    report.add("courses", courses)
    report.add("events", events)
    report.add("signed_steps", sum(r.signed_steps for r in results))
    report.add("verify_ms_per_1000_events", round(seconds * 1000 / events * 1000, 1))

    payload = {"step": "consent", "form_version": "2026-01", "signed_at": "2026-12-01T10:00:00+00:00"}
    fields = {"course_id": "c", "update_id": "u", "actor_id": "rn-bell", "role": "nurse", "step": "consent"}
    rounds = 200 if args.quick else 2000
    began = time.perf_counter()
    signatures = [signer.sign(**fields, payload=payload, now=start) for _ in range(rounds)]
    sign_us = (time.perf_counter() - began) / rounds * 1e6
    began = time.perf_counter()
    for signature in signatures:
        ring.check(signature, **fields, payload=payload, now=start, window=timedelta(minutes=5))
    check_us = (time.perf_counter() - began) / rounds * 1e6
    report.add("sign_us_per_step", round(sign_us, 1))
    report.add("check_us_per_step", round(check_us, 1), "what the update validator adds to each step")
    report.add("load_average", common.load_average())
    report.finish()


async def main(args: argparse.Namespace) -> None:
    main_sync(args)


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--courses", type=int, help="signed courses to verify (default 50; quick 5)")
    common.run(main, parsed.parse_args())
