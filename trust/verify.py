"""Verify a stored stream: every signed step is proven, and its events are what it decided.

The stream is walked in order, one decision (batch) at a time:
- a clinician's step carries the edge's signature and the signed command (on its first event):
  the signature is checked against the public keys (no freshness window: it was fresh when the
  worker took it), then the command is decided again on the state folded so far, at the time it
  was stored; the stored events must be exactly those. One byte changed in an event's data, in
  the command, the actor or the signature, and the stream fails at that version;
- a timer's facts (reminders, overdue flags, a lapse) are decided again from a Tick at their time;
- the opening and the payer's answer are system facts nobody signs: they are counted, not proven;
- a clinician's step stored before steps were signed is counted as unsigned (`--strict` fails it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from pydantic import TypeAdapter, ValidationError

from course.commands import STEPS, ClinicianCommand, Tick
from course.decider import decide
from course.errors import RuleViolation
from course.events import CourseClosed, EventEnvelope
from course.state import CourseState, evolve
from trust.signing import KeyRing, SignatureRefused

_COMMAND: TypeAdapter[ClinicianCommand] = TypeAdapter(ClinicianCommand)
_TIMER_FACTS = {"ReminderSent", "FollowUpOverdue", "MaintenanceOverdue", "CourseClosed"}


@dataclass
class Verification:
    stream_id: str
    events: int = 0
    signed_steps: int = 0
    unsigned_steps: int = 0
    timer_batches: int = 0
    system_facts: int = 0
    failed_at: int | None = None
    code: str | None = None
    detail: str | None = None
    unsigned_versions: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_at is None

    def fail(self, version: int, code: str, detail: str) -> Verification:
        self.failed_at, self.code, self.detail = version, code, detail
        return self


def _batch_key(envelope: EventEnvelope) -> tuple[str | None, str, object]:
    metadata = envelope.metadata
    return metadata.update_id, metadata.run_id, envelope.occurred_at


def verify_stream(stream_id: str, envelopes: Sequence[EventEnvelope], ring: KeyRing) -> Verification:
    result = Verification(stream_id=stream_id, events=len(envelopes))
    state: CourseState | None = None
    for _, grouped in groupby(envelopes, key=_batch_key):
        batch = list(grouped)
        first = batch[0]
        if state is not None:
            problem = _check_batch(state, batch, ring, result)
            if problem is not None:
                return result.fail(*problem)
        else:
            result.system_facts += len(batch)
        try:
            for envelope in batch:
                state = evolve(state, envelope)
        except (ValueError, ValidationError) as error:
            return result.fail(first.version, "does_not_fold", type(error).__name__)
    return result


def _timer_batch(batch: list[EventEnvelope]) -> bool:
    """A Tick's facts: reminders, overdue flags, a lapse (a withdrawal by cancel is not one)."""
    return all(
        e.type in _TIMER_FACTS and (not isinstance(e.event, CourseClosed) or e.event.outcome == "lapsed") for e in batch
    )


def _check_batch(
    state: CourseState, batch: list[EventEnvelope], ring: KeyRing, result: Verification
) -> tuple[int, str, str] | None:
    first = batch[0]
    metadata = first.metadata
    stored = [e.event.model_dump(mode="json") for e in batch]
    if metadata.update_id is None:
        if _timer_batch(batch):
            decided = [e.model_dump(mode="json") for e in decide(state, Tick(), metadata.actor, first.occurred_at)]
            if decided != stored:
                return first.version, "timer_facts_differ", "these timer facts are not what the course was due"
            result.timer_batches += 1
        else:
            result.system_facts += len(batch)
        return None
    if metadata.signature is None:
        result.unsigned_steps += 1
        result.unsigned_versions.append(first.version)
        return None
    if metadata.command is None or metadata.command.get("step") not in STEPS:
        return first.version, "command_missing", "the signed command is not stored with its step"
    try:
        command: ClinicianCommand = _COMMAND.validate_python(metadata.command)
        ring.check(
            metadata.signature,
            course_id=str(state.course_id),
            update_id=metadata.update_id,
            actor_id=metadata.actor.id,
            role=metadata.actor.role.value,
            step=command.step,
            payload=metadata.command,
            now=None,
            window=None,
        )
        decided = [e.model_dump(mode="json") for e in decide(state, command, metadata.actor, first.occurred_at)]
    except SignatureRefused as refused:
        return first.version, refused.code, refused.message
    except ValidationError:
        return first.version, "command_unreadable", "the signed command does not validate"
    except RuleViolation as violation:
        return first.version, "not_decidable", f"the signed command is refused by the rules now ({violation.code})"
    for offset, (expected, actual) in enumerate(zip(decided, stored, strict=False)):
        if expected != actual:
            return first.version + offset, "event_altered", "this event is not what its signed step decided"
    if len(decided) != len(stored):
        return first.version + min(len(decided), len(stored)), "event_altered", "the step's events are not all there"
    result.signed_steps += 1
    return None
