"""The ports the workflow's activities need, and the messages that cross them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Protocol
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from course.commands import InsuranceStatus, PatientShare, ReasonCode
from course.events import EventEnvelope
from course.state import CourseState


class ConcurrencyError(Exception):
    """A different event already holds this version: retrying cannot help."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # rolling deploys: see course/commands.py


class CourseSummary(_Message):
    """The `course_summaries` row for the state after a batch: computed by the workflow from the
    state it already folded, so the store never folds inside an append (a fold that fails there
    would hold the course)."""

    course_id: UUID
    patient_id: str
    phase: str
    outcome: str | None
    clinician_id: str
    therapist_id: str | None
    insurance: str | None
    sessions_completed: int
    sessions_planned: int | None
    gad7_baseline: int | None
    gad7_latest: int | None
    on_hold: bool
    needs_clinical_review: bool
    overdue: bool
    version: int
    opened_at: AwareDatetime

    @classmethod
    def of(cls, state: CourseState) -> CourseSummary:
        return cls(
            course_id=state.course_id,
            patient_id=state.patient_id,
            phase=state.phase.value,
            outcome=state.outcome,
            clinician_id=state.clinician_id,
            therapist_id=state.therapist_id,
            insurance=state.insurance.value if state.insurance else None,
            sessions_completed=state.sessions_completed,
            sessions_planned=state.plan.planned_sessions if state.plan else None,
            gad7_baseline=state.gad7_baseline,
            gad7_latest=state.gad7_latest,
            on_hold=state.on_hold,
            needs_clinical_review=state.review_required,
            overdue=bool(state.overdue),
            version=state.version,
            opened_at=state.opened_at,
        )


class EventBatch(_Message):
    stream_id: str
    expected_version: int
    events: list[EventEnvelope]
    # None only from a workflow built before summaries travelled with the batch: the store then
    # folds the stream itself, and writes the events without a summary if it cannot.
    summary: CourseSummary | None = None


class AppendResult(_Message):
    version: int
    written: int
    # The versions were already taken by the same decision (the same update id, timer key, the
    # opening, the payer's answer) under other event ids, e.g. re-executed after a reset: the
    # stored events stand and the workflow re-loads the stream instead of failing.
    adopted: bool = False
    summary_written: bool = True


class EventStore(Protocol):
    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[EventEnvelope],
        summary: CourseSummary | None = None,
    ) -> AppendResult: ...

    async def read(self, stream_id: str) -> list[EventEnvelope]: ...


class LoadCourse(_Message):
    stream_id: str
    # How many of the most recent update ids to return (retries across runs are answered once).
    updates_kept: int = 500


class LoadedCourse(_Message):
    """A stream's head as the store holds it: the fold of every stored event, by today's `evolve`."""

    version: int
    state: CourseState | None
    applied_updates: list[str] = []


def decision_identity(envelope: EventEnvelope) -> tuple[str, str | None, str | None]:
    """What makes two events the same decision though their ids and times differ: the event type,
    the clinician's update id, and a timer fact's key. CourseOpened and EligibilityChecked have
    neither: at their version in their stream there is only ever one opening and one answer."""
    key = getattr(envelope.event, "key", None)
    return envelope.type, envelope.metadata.update_id, key if isinstance(key, str) else None


Identity = tuple[str, str | None, str | None]
_ONCE_PER_STREAM = ("CourseOpened", "EligibilityChecked")


def same_decision(stored: Sequence[Identity], batch: Sequence[Identity]) -> bool:
    """Whether the events already at a batch's versions record the batch's decision. A batch
    with nothing to tell it apart (no update id, no key, not the opening or the payer's answer)
    is never assumed to be the same as what is stored."""
    anchored = any(update or key or kind in _ONCE_PER_STREAM for kind, update, key in batch)
    return anchored and list(stored) == list(batch)


class EligibilityRequest(_Message):
    course_id: str
    payer_id: str | None
    member_ref: str | None
    self_pay: bool
    service_type: Literal["MH"] = "MH"


UNRECOGNISED_REASON = "unrecognised_reason"
_NOT_IN_A_CODE = re.compile(r"[^a-z0-9_]+")


def reason_code(text: str) -> str:
    """A payer's or clearinghouse's reason as a code the course can store (`^[a-z0-9_]+$`, ≤ 64).

    Whatever a payer sends must not reach the workflow unchecked: a reason the command refuses
    used to fail the workflow task in a loop, with the course's lock held.
    """
    code = _NOT_IN_A_CODE.sub("_", text.strip().lower()).strip("_")[:64].rstrip("_")
    return code or UNRECOGNISED_REASON


def _as_reason_code(value: object) -> object:
    # Mapped, not refused, also where the workflow reads the result: a course whose history
    # already holds a bad reason (written by an older worker) reads it as a code and goes on.
    return reason_code(value) if isinstance(value, str) else value


class EligibilityResult(_Message):
    status: InsuranceStatus
    # A code for staff (`^[a-z0-9_]+$`, it becomes RecordEligibility.reason): why this status,
    # e.g. `active_coverage`, `non_covered`, `aaa_72_invalid_member_id`, `manual_verification`.
    # Checked here, not first in the workflow, where a bad one failed the task in a loop.
    reason: Annotated[ReasonCode | None, BeforeValidator(_as_reason_code)] = None
    in_network: bool | None = None
    patient_share: PatientShare | None = None


class EligibilityProvider(Protocol):
    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        """The payer's answer. Raises PayerUnavailable when asking again later may help."""
        ...


class PayerUnavailable(Exception):
    """The clearinghouse or payer did not answer (network error, timeout, 5xx, AAA 42): retry.

    The message names the failure kind only, never the request: it reaches Temporal's history.
    """


Recipient = Literal["patient", "clinician", "therapist", "operations"]

# Operations' messages a nurse in the chair-side room must act on within minutes (a blood-pressure
# recheck gone late): addressed to the nurse on duty, a shift, not a person. The clinic points the
# `staff_contacts` row `nurse-on-duty` at the room's pager or phone as shifts change; without that
# row they go to operations' address, as every other operations message does.
NURSE_ON_DUTY = "nurse-on-duty"
FOR_THE_NURSE_ON_DUTY = frozenset({"monitoring_recheck_late"})


class ReminderFacts(_Message):
    """What a reminder is about, for its template: times and numbers, never contact details."""

    # The dosing session the reminder concerns (session_tomorrow, integration_due).
    session_number: int | None = None
    # The time it is about: the session's start, the maintenance due date, or since when a
    # course has been waiting (clearance_pending).
    subject_at: AwareDatetime | None = None
    # A staff message's reason code (`^[a-z0-9_]+$`): why a course needs attention.
    reason: str | None = None
    # A clinic digest's lines (the morning huddle, a reconciliation): opaque ids, codes and
    # times only (course/huddle.py, course/reconcile.py), never patient data.
    digest: list[str] | None = None


class Notification(_Message):
    idempotency_key: str
    stream_id: str
    purpose: str
    recipient: Recipient
    # Patient: the pseudonymous patient id; staff: the staff id; operations: None (the team), or
    # NURSE_ON_DUTY for the messages the chair-side room acts on.
    # Addresses are looked up at delivery time (ContactDirectory), never carried here.
    recipient_id: str | None
    due_at: AwareDatetime
    facts: ReminderFacts | None = None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"  # the channel refused, nothing was sent: a retry may claim it again
    UNDELIVERABLE = "undeliverable"  # no address on file, or the address is refused for good
    DELIVERY_UNCERTAIN = "delivery_uncertain"  # an attempt died mid-delivery: never resent


class DeliveryResult(_Message):
    delivered: bool
    duplicate: bool
    status: DeliveryStatus | None = None


class Contact(_Message):
    """How to reach a recipient, read from the clinic's directory at delivery time."""

    email: str | None = None
    phone: str | None = None
    display_name: str | None = None
    time_zone: str | None = None  # IANA name; None: the clinic's


class ContactDirectory(Protocol):
    async def contact_for(self, recipient: Recipient, recipient_id: str | None) -> Contact | None: ...


class OutgoingMessage(_Message):
    """A rendered notification, ready for a channel. Holds patient data: never log it."""

    notification: Notification
    contact: Contact | None
    subject: str
    body: str
    # Deterministic from the idempotency key: the same notification always has the same id.
    message_id: str


class DeliveryRefused(Exception):
    """The channel definitely sent nothing (refused before the message was handed over).

    `permanent`: asking again cannot help (no address, address rejected for good). `code` is a
    short machine code (`smtp_550`, `no_address`), never an address or message text.
    """

    def __init__(self, code: str, *, permanent: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent


class Claim(_Message):
    """The outbox's answer to "may this attempt deliver?"."""

    status: DeliveryStatus  # SENDING: yes, this attempt holds the claim; anything else: no
    attempts: int


class Outbox(Protocol):
    async def claim(self, notification: Notification, claim_id: str) -> Claim:
        """Record the notification (once per key) and claim it for this attempt, atomically.

        Claimable: new, `pending` or `failed`. A row still `sending` under another claim
        becomes `delivery_uncertain`: that attempt may have delivered before it died.
        """
        ...

    async def mark_delivered(
        self, key: str, channel: str, at: datetime, *, claim_id: str | None = None, message_id: str | None = None
    ) -> None: ...

    async def mark_failed(
        self, key: str, claim_id: str, status: DeliveryStatus, error: str, *, channel: str | None = None
    ) -> None:
        """End this attempt's claim: FAILED (retry may claim), UNDELIVERABLE or DELIVERY_UNCERTAIN."""
        ...


class Channel(Protocol):
    name: str

    async def deliver(self, message: OutgoingMessage) -> None:
        """Hand the message over. DeliveryRefused: nothing was sent; any other error: unknown."""
        ...


# Activity names: the workflow calls them by name so its sandbox never imports asyncpg.
APPEND_EVENTS = "append_events"
LOAD_COURSE = "load_course"
CHECK_ELIGIBILITY = "check_eligibility"
SEND_NOTIFICATION = "send_notification"
