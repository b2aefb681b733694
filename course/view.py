"""The `CourseView` the `status` query returns, the `StepOutcome` a step answers with, and the
checklist operations staff read."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from course.commands import PatientShare
from course.phases.monitoring import escalation_at, recheck_due
from course.policy import PolicyRef
from course.reasons import Facts, reason_in_words, reasons_in_words
from course.rules import PREPARATION_STEPS, missing_clearance, missing_preparation
from course.state import CourseState, Phase
from course.timing import next_due, pending


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StepStatus(_View):
    name: str
    status: Literal["done", "pending", "blocked"]
    why: str | None = None


class SessionCount(_View):
    completed: int
    planned: int | None


class NextDue(_View):
    what: str
    at: datetime


class DeferredSession(_View):
    """A session put off at check-in, with its reason as a code and in words."""

    session_number: int
    at: datetime
    reason: str
    in_words: str


class Flags(_View):
    on_hold: bool
    needs_clinical_review: bool
    needs_review: bool
    overdue: bool


class Gad7(_View):
    baseline: int | None
    latest: int | None
    change: int | None


class InMonitoring(_View):
    """A patient in the chair after the dose: what the chair-side board shows (course/phases/monitoring.py)."""

    session_number: int
    given_at: datetime
    next_reading_due: datetime | None  # None: no clock asks for one (read as clinically warranted)
    discharge_from: datetime  # the minimum observation for the route ends then
    escalation_at: datetime
    readings: int
    last_reading_at: datetime | None = None
    last_blood_pressure: str | None = None  # "150/92": clinical, never in the operations view


class CourseView(_View):
    course_id: str
    # The clinic's pseudonymous patient reference given at opening: how staff know the course.
    # (None only from a worker that predates it.)
    patient_id: str | None = None
    phase: Phase
    outcome: str | None
    close_reasons: list[str]
    awaiting: list[str]
    steps: list[StepStatus]
    dosing_sessions: SessionCount
    next_due: NextDue | None
    flags: Flags
    overdue_items: list[str]
    gad7: Gad7
    insurance: str | None
    # The payer's answer, for the financial clearance (never in the operations checklist).
    in_network: bool | None = None
    patient_share: PatientShare | None = None
    route: str | None
    # The dose the next session is planned at: the plan's starting dose, or a review's new one.
    # A default: a worker that predates it answers without it.
    # A dose is finite (the plan bounds it): JSON has no infinity, so a view must not hold one.
    dose_mg_per_kg: float | None = Field(None, allow_inf_nan=False)
    clinician_id: str
    therapist_id: str | None
    version: int
    # The published policy the course runs by (None: opened before policies lived on the server).
    policy: PolicyRef | None = None
    # Set by the workflow while it cannot record a fact it decided on its own (a reason code).
    attention: str | None = None
    # Why, in words, for the care team (course/reasons.py): they name readings, so the operations
    # view has none of them. Defaults: a worker of the previous version sends a view without them.
    close_reasons_in_words: list[str] = []
    deferred_sessions: list[DeferredSession] = []
    review_reasons_in_words: list[str] = []
    hold_reason_in_words: str | None = None
    # The next reminder the course will send (next_due may be a deadline or an overdue flag).
    next_reminder: NextDue | None = None
    in_monitoring: InMonitoring | None = None


class OperationsView(_View):
    """What operations staff read of a course: phase, what it waits for, flags, times, codes and
    the payer's answer for the financial clearance. No clinical payload: no GAD-7, no route, no
    reasons a course closed (they name contraindications)."""

    view: Literal["operations"] = "operations"
    course_id: str
    patient_id: str | None = None  # the pseudonymous reference operations open and find courses by
    phase: Phase
    outcome: str | None
    awaiting: list[str]
    steps: list[StepStatus]
    dosing_sessions: SessionCount
    next_due: NextDue | None
    flags: Flags
    overdue_items: list[str]
    insurance: str | None
    in_network: bool | None = None
    patient_share: PatientShare | None = None
    clinician_id: str
    therapist_id: str | None
    version: int
    attention: str | None = None
    next_reminder: NextDue | None = None


class StepOutcome(_View):
    """What a step's caller needs back: the `record` update's result. Small on purpose: every
    update result is a payload the worker encodes and the course's history keeps, once per step,
    and the whole `CourseView` was most of a course's history bytes (bench/FINDINGS.md). Codes and
    counts only, no clinical payload; the whole view is the `status` query."""

    course_id: str
    version: int
    phase: Phase
    outcome: str | None
    awaiting: list[str]
    dosing_sessions: SessionCount
    next_due: NextDue | None
    flags: Flags
    attention: str | None = None

    @classmethod
    def of(cls, course: CourseView) -> StepOutcome:
        return cls(
            course_id=course.course_id,
            version=course.version,
            phase=course.phase,
            outcome=course.outcome,
            awaiting=course.awaiting,
            dosing_sessions=course.dosing_sessions,
            next_due=course.next_due,
            flags=course.flags,
            attention=course.attention,
        )


def operations_view(course: CourseView) -> OperationsView:
    return OperationsView.model_validate(course.model_dump(include=set(OperationsView.model_fields) - {"view"}))


def awaiting(state: CourseState) -> list[str]:
    """Step names the course is waiting for, in the order a clinician would do them."""
    if state.terminal:
        return []
    if state.on_hold:
        return ["release"]
    if state.review_required:
        return ["clinical-review"]
    clearance = missing_clearance(state)
    money = [clearance] if clearance else []
    match state.phase:
        case Phase.ASSESSMENT:
            return ["assessment", *money]
        case Phase.PREPARATION:
            return [*missing_preparation(state), *money]
        case Phase.DOSING:
            follow_up = [] if state.integration_since_last_dose else ["integration-session"]
            if state.monitoring is not None:  # a patient in the chair after the dose
                return ["monitoring-reading", "discharge", *follow_up]
            if state.checked_in is None:
                return ["check-in", *follow_up]
            step = "dose-administered" if state.policy.monitoring is not None else "dosing-session"
            return [step, *follow_up]
        case Phase.INTEGRATION:
            if state.post_series_integration_sessions == 0:
                return ["integration-session"]
            return ["maintenance-plan"]
        case _:
            return ["maintenance-session"]


def _assessment_step(state: CourseState) -> StepStatus:
    if state.candidacy_confirmed:
        return StepStatus(name="assessment", status="done")
    if state.assessed and state.outcome == "ineligible":
        # Done, and its outcome ended the course; the reasons in words are the care team's.
        return StepStatus(name="assessment", status="done", why="ineligible")
    return StepStatus(name="assessment", status="pending")


def _steps(state: CourseState) -> list[StepStatus]:
    steps = [_assessment_step(state)]
    clearance = missing_clearance(state)
    steps.append(
        StepStatus(
            name="insurance",
            status="done" if clearance is None else "pending",
            why=None if clearance is None else f"waiting for {clearance}",
        )
    )
    missing = set(missing_preparation(state))
    blocked_why = None if state.candidacy_confirmed else "assessment first"
    for name in PREPARATION_STEPS:
        if name not in missing:
            steps.append(StepStatus(name=name, status="done"))
        else:
            steps.append(StepStatus(name=name, status="blocked" if blocked_why else "pending", why=blocked_why))
    planned = state.plan.planned_sessions if state.plan else None
    dosing_why = None
    if state.phase in (Phase.ASSESSMENT, Phase.PREPARATION):
        dosing_why = "preparation incomplete"
    elif state.on_hold:
        dosing_why = "on hold"
    elif state.review_required:
        dosing_why = "clinical review required"
    dosing_done = state.series_completed_at is not None
    steps.append(
        StepStatus(
            name=f"dosing {state.sessions_completed}/{planned}" if planned else "dosing (plan pending)",
            status="done" if dosing_done else ("blocked" if dosing_why else "pending"),
            why=None if dosing_done else dosing_why,
        )
    )
    steps.append(
        StepStatus(
            name="integration after series",
            status="done" if state.post_series_integration_sessions else ("pending" if dosing_done else "blocked"),
            why=None if dosing_done else "after the dosing series",
        )
    )
    steps.append(
        StepStatus(
            name="maintenance plan",
            status="done" if state.maintenance_kind is not None else "pending",
        )
    )
    return steps


def view(state: CourseState, now: datetime) -> CourseView:
    due = next_due(state, now)
    reminder = next((item for item in pending(state, now) if item.kind == "reminder"), None)
    baseline, latest = state.gad7_baseline, state.gad7_latest
    facts = Facts(policy=state.policy, reading=state.assessment_blood_pressure)
    return CourseView(
        course_id=str(state.course_id),
        patient_id=state.patient_id,
        phase=state.phase,
        outcome=state.outcome,
        close_reasons=list(state.close_reasons),
        awaiting=awaiting(state),
        steps=_steps(state),
        dosing_sessions=SessionCount(
            completed=state.sessions_completed,
            planned=state.plan.planned_sessions if state.plan else None,
        ),
        next_due=NextDue(what=due.summary, at=due.at) if due else None,
        flags=Flags(
            on_hold=state.on_hold,
            needs_clinical_review=state.review_required,
            needs_review=state.needs_review,
            overdue=bool(state.overdue),
        ),
        overdue_items=list(state.overdue),
        gad7=Gad7(
            baseline=baseline,
            latest=latest,
            change=None if baseline is None or latest is None else latest - baseline,
        ),
        insurance=state.insurance.value if state.insurance else None,
        in_network=state.in_network,
        patient_share=state.patient_share,
        route=state.current_route.value if state.current_route else None,
        dose_mg_per_kg=state.current_dose_mg_per_kg,
        clinician_id=state.clinician_id,
        therapist_id=state.therapist_id,
        version=state.version,
        policy=state.policy_ref,
        close_reasons_in_words=reasons_in_words(state.close_reasons, facts),
        deferred_sessions=[
            DeferredSession(
                session_number=d.session_number,
                at=d.at,
                reason=d.reason,
                in_words=reason_in_words(d.reason, Facts(policy=state.policy, reading=d.vitals)),
            )
            for d in state.deferrals
        ],
        review_reasons_in_words=reasons_in_words(state.review_reasons, facts),
        hold_reason_in_words=reason_in_words(state.hold_reason, facts) if state.on_hold and state.hold_reason else None,
        next_reminder=NextDue(what=reminder.summary, at=reminder.at) if reminder else None,
        in_monitoring=_in_monitoring(state),
    )


def _in_monitoring(state: CourseState) -> InMonitoring | None:
    session, policy = state.monitoring, state.policy.monitoring
    if session is None or policy is None:
        return None
    last = session.last
    return InMonitoring(
        session_number=session.session_number,
        given_at=session.given_at,
        next_reading_due=recheck_due(session, policy),
        discharge_from=session.given_at + policy.minimum_for(session.route),
        escalation_at=escalation_at(session, policy),
        readings=len(session.readings),
        last_reading_at=last.taken_at if last else None,
        last_blood_pressure=f"{last.blood_pressure.systolic}/{last.blood_pressure.diastolic}" if last else None,
    )


def checklist(course: CourseView) -> str:
    """Markdown for the Temporal UI's current details: codes and step names, no patient data."""
    marks = {"done": "✅", "pending": "⬜", "blocked": "⛔"}
    title = f"**{course.phase.value}**" + (f" ({course.outcome})" if course.outcome else "")
    lines = [title, ""]
    lines += [f"- {marks[s.status]} {s.name}" + (f" — {s.why}" if s.why else "") for s in course.steps]
    lines.append("")
    if course.route:
        planned = course.dosing_sessions.planned
        lines.append(f"- route: {course.route}, sessions {course.dosing_sessions.completed}/{planned}")
    if course.awaiting:
        lines.append(f"- waiting for: {', '.join(course.awaiting)}")
    chair = course.in_monitoring
    if chair is not None:  # times only: the readings are clinical and stay out of the UI
        due = f"; BP recheck due {chair.next_reading_due:%H:%M}" if chair.next_reading_due else ""
        lines.append(
            f"- in monitoring since {chair.given_at:%H:%M} UTC (session {chair.session_number}){due}; "
            f"discharge from {chair.discharge_from:%H:%M}"
        )
    if course.next_due:
        lines.append(f"- next: {course.next_due.what}, {course.next_due.at:%Y-%m-%d %H:%M} UTC")
    if course.attention:
        lines.append(f"- ⚠️ needs attention: {course.attention} (retrying; `course retry` to retry now)")
    flags = [name for name, on in course.flags.model_dump().items() if on]
    if flags:
        lines.append(f"- flags: {', '.join(flags)}")
    return "\n".join(lines).rstrip()
