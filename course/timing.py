"""Which reminders, overdue flags and deadlines a course is waiting for, as a pure function.

The workflow sleeps until the earliest pending item, then asks the decider to `Tick`; an item's
key goes into the state when it fires, so it fires once, also across continue-as-new.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from course.phases.monitoring import escalation_at, late_at
from course.rules import missing_clearance
from course.state import CourseState, Phase

# A key ends in the time it is about (`session-1-reminder-2026-12-01T09:00:00+00:00`).
_KEYED_TIME = re.compile(r"^(?P<head>.+?-)(?P<at>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}(?::[0-9.]+)?))$")

DueKind = Literal["reminder", "overdue", "lapse", "maintenance_overdue", "monitoring_late", "monitoring_escalation"]
Recipient = Literal["patient", "clinician", "therapist", "operations"]


class DueItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    at: datetime
    kind: DueKind
    purpose: str
    recipient: Recipient = "clinician"
    # What the reminder is about, for its template: the session and the time in question.
    session_number: int | None = None
    subject_at: datetime | None = None
    # Shown on the Temporal timer and in the course view: opaque, no patient data.
    summary: str


def _stamp(at: datetime) -> str:
    """The time in a key, always in UTC: a caller's offset must not make a second reminder.

    Keys of running courses were built from UTC times, whose isoformat ends `+00:00`: unchanged.
    """
    return at.astimezone(UTC).isoformat()


def canonical_key(key: str) -> str:
    """A fired key as `_stamp` would write it: a key stored with another offset is the same item."""
    found = _KEYED_TIME.match(key)
    if found is None:
        return key
    try:
        at = datetime.fromisoformat(found["at"])
    except ValueError:
        return key
    return found["head"] + _stamp(at) if at.tzinfo is not None else key


def _phase_items(state: CourseState) -> list[DueItem]:
    policy, start = state.policy, state.phase_entered_at + state.shift(state.phase_hold_mark)
    if state.phase is Phase.ASSESSMENT:
        return [
            DueItem(
                key="assessment-reminder",
                at=start + policy.assessment_reminder_after,
                kind="reminder",
                purpose="assessment_pending",
                summary="reminder: assessment not yet recorded",
            ),
            DueItem(
                key="assessment-lapse",
                at=start + policy.assessment_deadline,
                kind="lapse",
                purpose="assessment_deadline",
                summary="deadline: course lapses unassessed",
            ),
        ]
    if state.phase is Phase.PREPARATION:
        return [
            DueItem(
                key="preparation-reminder",
                at=start + policy.preparation_reminder_after,
                kind="reminder",
                purpose="preparation_stalled",
                summary="reminder: preparation incomplete",
            ),
            DueItem(
                key="preparation-lapse",
                at=start + policy.preparation_deadline,
                kind="lapse",
                purpose="preparation_deadline",
                summary="deadline: course lapses in preparation",
            ),
        ]
    return []


def _session_items(state: CourseState, now: datetime) -> list[DueItem]:
    if state.phase not in (Phase.PREPARATION, Phase.DOSING):
        return []
    return [
        DueItem(
            key=f"session-{n}-reminder-{_stamp(when)}",
            at=when - state.policy.session_reminder_lead,
            kind="reminder",
            purpose="session_tomorrow",
            recipient="patient",
            summary=f"reminder: dosing session {n} tomorrow (arrange a ride home)",
        )
        for n, when in sorted(state.scheduled.items())
        # A reminder for a session that has happened, or whose time has passed, helps nobody.
        if n > state.sessions_completed and when > now
    ]


def _integration_items(state: CourseState) -> list[DueItem]:
    policy, items = state.policy, []
    if (
        state.phase in (Phase.DOSING, Phase.INTEGRATION)
        and state.last_dose_at is not None
        and not state.integration_since_last_dose
    ):
        n, dosed = state.sessions_completed, state.last_dose_at + state.shift(state.dose_hold_mark)
        items += [
            DueItem(
                key=f"integration-reminder-{n}",
                at=dosed + policy.integration_reminder_after,
                kind="reminder",
                purpose="integration_due",
                recipient="therapist",
                session_number=n,
                subject_at=state.last_dose_at,
                summary=f"reminder: integration session due after dosing session {n}",
            ),
            DueItem(
                key=f"integration-overdue-{n}",
                at=dosed + policy.integration_due_within,
                kind="overdue",
                purpose="integration_session",
                summary=f"overdue: integration session after dosing session {n}",
            ),
        ]
    if state.phase is Phase.INTEGRATION and state.series_completed_at is not None:
        anchor = max(state.series_completed_at, state.last_integration_at or state.series_completed_at)
        at = anchor + policy.integration_gap_reminder + state.shift(state.integration_hold_mark)
        items.append(
            DueItem(
                key=f"integration-gap-{_stamp(anchor)}",
                at=at,
                kind="reminder",
                purpose="integration_gap",
                recipient="therapist",
                summary="reminder: no integration session recently",
            )
        )
    return items


def _maintenance_items(state: CourseState) -> list[DueItem]:
    due = state.maintenance_due_at
    if state.phase is not Phase.MAINTENANCE or due is None:
        return []
    policy, shifted = state.policy, due + state.shift(state.maintenance_hold_mark)
    return [
        DueItem(
            key=f"maintenance-reminder-{_stamp(due)}",
            at=shifted - policy.maintenance_reminder_lead,
            kind="reminder",
            purpose="maintenance_due",
            recipient="patient",
            subject_at=due,
            summary="reminder: time to book the maintenance session",
        ),
        DueItem(
            key=f"maintenance-overdue-{_stamp(due)}",
            at=shifted + policy.maintenance_grace,
            kind="maintenance_overdue",
            purpose="maintenance_overdue",
            recipient="patient",
            subject_at=due,
            summary="overdue: maintenance session (second reminder)",
        ),
    ]


def _clearance_items(state: CourseState) -> list[DueItem]:
    """Staff verify coverage by phone: if nobody has cleared the money in 3 days, tell operations."""
    if state.phase not in (Phase.ASSESSMENT, Phase.PREPARATION) or state.insurance_checked_at is None:
        return []
    if missing_clearance(state) not in ("financial-clearance", "prior-authorization"):
        return []
    return [
        DueItem(
            key="clearance-reminder",
            at=state.insurance_checked_at + state.policy.clearance_reminder_after + state.shift(state.phase_hold_mark),
            kind="reminder",
            purpose="clearance_pending",
            recipient="operations",
            subject_at=state.insurance_checked_at,
            summary="reminder: financial clearance or prior authorization pending",
        )
    ]


def _monitoring_items(state: CourseState) -> list[DueItem]:
    """The clocks on a patient in the chair: a late recheck (the nurse on duty is told) and not
    discharged after `escalate_after` (the prescriber is told). A reading moves the first on; the
    discharge ends both."""
    session, policy = state.monitoring, state.policy.monitoring
    if session is None or policy is None:
        return []
    n, items = session.session_number, []
    late = late_at(session, policy)
    if late is not None:
        due = late - policy.late_after
        items.append(
            DueItem(
                key=f"monitoring-{n}-recheck-late-{_stamp(due)}",
                at=late,
                kind="monitoring_late",
                purpose="monitoring_recheck_late",
                recipient="operations",
                session_number=n,
                subject_at=due,
                summary=f"monitoring: blood pressure recheck of session {n} due {due:%H:%M} UTC",
            )
        )
    items.append(
        DueItem(
            key=f"monitoring-{n}-escalation",
            at=escalation_at(session, policy),
            kind="monitoring_escalation",
            purpose="monitoring_escalation",
            recipient="clinician",
            session_number=n,
            subject_at=session.given_at,
            summary=f"monitoring: session {n} not discharged by {escalation_at(session, policy):%H:%M} UTC",
        )
    )
    return items


def pending(state: CourseState, now: datetime) -> list[DueItem]:
    """Items not yet fired, earliest first. A course on hold waits for nothing but the clocks on a
    patient in the chair, which no hold pauses."""
    if state.terminal:
        return []
    # Canonical: a course whose times were stored with a caller's offset fired keys carrying it.
    fired = {canonical_key(key) for key in state.fired}
    items = _monitoring_items(state)
    if not state.on_hold:
        items += [
            *_phase_items(state),
            *_clearance_items(state),
            *_session_items(state, now),
            *_integration_items(state),
            *_maintenance_items(state),
        ]
    return sorted((i for i in items if i.key not in fired), key=lambda i: (i.at, i.key))


def next_due(state: CourseState, now: datetime) -> DueItem | None:
    items = pending(state, now)
    return items[0] if items else None


def next_for_staff(state: CourseState, now: datetime) -> DueItem | None:
    """The earliest pending item that asks something of the clinic's staff (a reminder to a
    clinician, therapist or operations, an overdue flag, a deadline, a late recheck): what
    `NextDueAt` tells operations. A reminder to the patient goes out on its own and asks nothing
    of anyone at the clinic, so it is not "due" for them (and would move the attribute, an upsert,
    twice per session)."""
    return next((item for item in pending(state, now) if item.recipient != "patient"), None)


def sleep_for(item: DueItem, now: datetime) -> timedelta:
    return max(item.at - now, timedelta(0))
