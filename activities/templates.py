"""The words of every reminder the course sends, rendered at delivery time from its facts.

Patient messages say what to do and no more: mail is read on lock screens and shared devices, so
subjects stay neutral ("your appointment") and no message names a drug, a diagnosis or a score.
Staff messages carry the opaque course id and the command to look at it, never patient data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from activities.ports import Contact, DeliveryRefused, Notification, OutgoingMessage


class Clinic(BaseModel):
    """What every message says about the clinic (settings CLINIC_NAME, CLINIC_PHONE, ...)."""

    model_config = ConfigDict(frozen=True)

    name: str = "the clinic"
    phone: str | None = None
    time_zone: str = "UTC"
    # The right-hand side of Message-IDs: the clinic's mail domain.
    mail_domain: str = "treatment-courses.invalid"


@dataclass(frozen=True)
class Facts:
    """What a template may use: the notification's facts, formatted for the recipient."""

    greeting: str
    clinic: str
    call_us: str
    course_id: str
    session: str  # "session 3" or "session"
    when: str | None  # the time the reminder is about, in the recipient's zone
    due: str  # when the reminder fell due, in the recipient's zone
    reason: str  # a staff message's reason code (course_needs_attention), else ""
    digest: tuple[str, ...] = ()  # a clinic digest's lines (daily_huddle, reconcile_findings)


Template = Callable[[Facts], tuple[str, str]]


def _session_tomorrow(f: Facts) -> tuple[str, str]:
    when = f" ({f.when})" if f.when else ""
    return (
        f"Reminder: your appointment tomorrow at {f.clinic}",
        f"{f.greeting}\n\n"
        f"This is a reminder of your treatment {f.session} tomorrow{when}.\n\n"
        "You must not drive, cycle or operate machinery for the rest of the day after your session. "
        "Please arrange for an adult to take you home; we cannot start the session without a ride home.\n\n"
        f"If you cannot arrange a ride home or need to change the appointment, {f.call_us} before your session.\n",
    )


def _maintenance_due(f: Facts) -> tuple[str, str]:
    when = f" on {f.when}" if f.when else " soon"
    return (
        f"Time to book your next session at {f.clinic}",
        f"{f.greeting}\n\nYour next maintenance session is due{when}. {f.call_us.capitalize()} to book it.\n",
    )


def _maintenance_overdue(f: Facts) -> tuple[str, str]:
    since = f" on {f.when}" if f.when else ""
    return (
        f"Please book your next session at {f.clinic}",
        f"{f.greeting}\n\nYour maintenance session was due{since} and is not booked yet. "
        f"{f.call_us.capitalize()} to book it, or to tell us if your plans have changed.\n",
    )


def _staff(subject: str, body: str) -> Template:
    def render(f: Facts) -> tuple[str, str]:
        since = f" (eligibility answered {f.when})" if f.when else ""
        text = body.format(session=f.session, when=f.when or f.due, due=f.due, since=since, reason=f.reason)
        return (
            f"Course {f.course_id}: {subject}",
            f"{text}\n\nCourse {f.course_id}. Details: `course status {f.course_id}`, or the Temporal UI "
            f"(workflow course-{f.course_id}).\n",
        )

    return render


def _digest(subject: str, footer: str) -> Template:
    """A clinic-wide digest to staff: its lines as they are (ids, codes, times), and where to look."""

    def render(f: Facts) -> tuple[str, str]:
        return f"{subject} ({f.due})", "\n".join(f.digest) + f"\n\n{footer}\n"

    return render


TEMPLATES: dict[str, Template] = {
    # Patients.
    "session_tomorrow": _session_tomorrow,
    "maintenance_due": _maintenance_due,
    "maintenance_overdue": _maintenance_overdue,
    # Clinicians and therapists.
    "assessment_pending": _staff(
        "assessment not yet recorded", "The course has been waiting for its assessment since it opened."
    ),
    "preparation_stalled": _staff(
        "preparation incomplete", "Preparation is not complete: the first dose cannot be given until it is."
    ),
    "integration_due": _staff(
        "integration session due",
        "An integration session is due after dosing {session} ({when}); none is recorded yet.",
    ),
    "integration_gap": _staff(
        "no recent integration session", "No integration session has been recorded recently (as of {due})."
    ),
    # After a dose (course/phases/monitoring.py): the nurse on duty and the prescriber.
    "monitoring_recheck_late": _staff(
        "blood pressure recheck late",
        "The blood pressure recheck of the patient in monitoring after dosing {session} was due at {when} "
        "and is not recorded. Take and record a reading now.",
    ),
    "monitoring_review": _staff(
        "review needed during monitoring",
        "A reading after dosing {session} needs a prescriber's review (blood pressure high twice in a row, or "
        "a severe side effect). See the chair-side board.",
    ),
    "monitoring_escalation": _staff(
        "patient not discharged",
        "The patient dosed in {session} has not been discharged {due} after the dose was given at {when}. "
        "A prescriber should see them.",
    ),
    # Operations.
    "clearance_pending": _staff(
        "insurance verification waiting",
        "Manual insurance verification is still pending{since}. Record `financial-clearance` or "
        "`prior-authorization` once the payer has been reached.",
    ),
    "course_needs_attention": _staff(
        "needs attention ({reason})",
        "The course could not record a fact it decided on its own (reason: {reason}). It keeps its timers "
        "and retries by itself with growing pauses; once the cause is fixed, `course retry` retries now. "
        'See docs/runbook.md, "A course needs attention".',
    ),
    # The clinic's schedules (workflows/clinic.py): operations, and each clinician their own part.
    "daily_huddle": _digest(
        "Today's huddle", "The console's Today page shows the same; `course status COURSE_ID` for a course."
    ),
    "reconcile_findings": _digest(
        "Reconciliation findings",
        "Each course named is marked NeedsAttention with its code; `course reconcile --last` lists them. "
        'See docs/runbook.md, "A course needs attention".',
    ),
}

# A purpose without its own words still reaches staff: it is a course needing attention. A
# patient is never sent vague words: such a message is refused (undeliverable, `no_template`).
NEEDS_ATTENTION = _staff("needs staff attention", "The course needs staff attention.")


def _zone(contact: Contact | None, clinic: Clinic) -> ZoneInfo:
    for name in (contact.time_zone if contact else None, clinic.time_zone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _format(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y at %H:%M} ({zone.key})"


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The same notification always gets the same Message-ID (RFC 5322), opaque to readers.

    It ties an outbox row to the mail relay's log, and lets mail systems that collapse duplicate
    Message-IDs do so should a message ever be sent twice by hand.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def render(notification: Notification, contact: Contact | None, clinic: Clinic) -> OutgoingMessage:
    zone = _zone(contact, clinic)
    facts = notification.facts
    number = facts.session_number if facts else None
    name = contact.display_name if contact and notification.recipient == "patient" else None
    values = Facts(
        greeting=f"Hello {name}," if name else "Hello,",
        clinic=clinic.name,
        call_us=f"please call {clinic.name} on {clinic.phone}" if clinic.phone else f"please contact {clinic.name}",
        course_id=notification.stream_id.removeprefix("course-"),
        session=f"session {number}" if number else "session",
        when=_format(facts.subject_at, zone) if facts and facts.subject_at else None,
        due=_format(notification.due_at, zone),
        reason=facts.reason if facts and facts.reason else "",
        digest=tuple(facts.digest) if facts and facts.digest else (),
    )
    template = TEMPLATES.get(notification.purpose)
    if template is None:
        if notification.recipient == "patient":
            raise DeliveryRefused("no_template", permanent=True)
        template = NEEDS_ATTENTION
    subject, body = template(values)
    return OutgoingMessage(
        notification=notification,
        contact=contact,
        subject=subject,
        body=body,
        message_id=message_id_for(notification.idempotency_key, clinic.mail_domain),
    )
