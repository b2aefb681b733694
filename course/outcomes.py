"""One course's outcome, as a fold of its events: the row the outcome reports aggregate.

Pure and total over the event union: every event either changes the outcome or leaves it as it is,
so a stream from any worker version folds. Only what the reports need is kept: GAD-7 readings (the
score and when), the phases entered, doses, integration sessions and their modalities, the route,
and how the course ended. No patient reference, no free text: a row names its course only by the
stream it folds (the projection's key), and reports never show that.

What each figure means (the README's "Outcome reports" says the same for readers):
- baseline: the assessment's GAD-7; latest: the last GAD-7 recorded after it (a dosing session's,
  an integration session's or a maintenance session's). A course with no reading after the baseline
  has no change, and is not *evaluable* for response or remission.
- response: baseline - latest >= the clinic's MCID; remission: latest < the clinic's cutoff. Both
  are judged at report time from the policy in force (course/policy.py: OutcomePolicy), so the
  projection stores readings, not verdicts, and a new policy needs no rebuild.
- the funnel stage reached: opened, assessed (assessment recorded), prepared (preparation
  completed), dosed (a dosing session completed), integrated (the dosing series completed: the
  integration phase), maintenance (a maintenance plan recorded, other than "none").
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from course.commands import MaintenanceKind, Modality, Route
from course.events import (
    AssessmentRecorded,
    CandidacyConfirmed,
    CourseClosed,
    CourseOpened,
    DomainEvent,
    DoseAdministered,
    DosingPlanRecorded,
    DosingSeriesCompleted,
    DosingSessionCompleted,
    IntegrationSessionRecorded,
    MaintenancePlanRecorded,
    MaintenanceSessionRecorded,
    PreparationCompleted,
)


class Stage(IntEnum):
    """How far a course went, in the order every course goes: a later stage implies the earlier."""

    OPENED = 0
    ASSESSED = 1
    PREPARED = 2
    DOSED = 3
    INTEGRATED = 4
    MAINTENANCE = 5

    @property
    def label(self) -> str:
        return self.name.lower()


class Gad7Point(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    score: int


class CourseOutcome(BaseModel):
    """The fold's state, stored as the projection's row (jsonb) and read back by the reports."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    opened_at: AwareDatetime
    stage: Stage = Stage.OPENED
    # Phase -> when it was entered (assessment at opening); time in a phase is up to the next one.
    phases: dict[str, AwareDatetime] = {}
    closed_at: AwareDatetime | None = None
    outcome: str | None = None  # CourseClosed's: completed, ineligible, withdrawn, lapsed, closed_by_clinician
    baseline: int | None = None
    readings: list[Gad7Point] = []  # after the baseline, in the order recorded
    first_dose_at: AwareDatetime | None = None
    doses: int = 0
    integration_sessions: int = 0
    modalities: list[Modality] = []  # each modality once, in the order first held
    planned_route: Route | None = None
    dosed_route: Route | None = None  # the route of the first dose given, when one was

    @property
    def latest(self) -> int | None:
        return self.readings[-1].score if self.readings else None

    @property
    def change(self) -> int | None:
        """Latest minus baseline: negative is better."""
        latest = self.latest
        return None if self.baseline is None or latest is None else latest - self.baseline

    @property
    def route(self) -> Route | None:
        return self.dosed_route or self.planned_route

    @property
    def integration_per_dose(self) -> float | None:
        return self.integration_sessions / self.doses if self.doses else None

    @property
    def opening_month(self) -> str:
        return self.opened_at.strftime("%Y-%m")


def opened(event: CourseOpened, at: datetime) -> CourseOutcome:
    return CourseOutcome(opened_at=at, phases={"assessment": at})


def evolve_outcome(outcome: CourseOutcome, event: DomainEvent, at: datetime) -> CourseOutcome:
    """Apply one event (after CourseOpened). Events that do not bear on outcomes leave it unchanged."""
    match event:
        case AssessmentRecorded(gad7=gad7):
            return _reached(outcome, Stage.ASSESSED, baseline=gad7)
        case CandidacyConfirmed():
            return _entered(outcome, "preparation", at)
        case DosingPlanRecorded(route=route):
            return outcome.model_copy(update={"planned_route": route})
        case PreparationCompleted():
            return _reached(_entered(outcome, "dosing", at), Stage.PREPARED)
        case DoseAdministered(route=route, given_at=given):
            # A monitored course's dose: the first dose is when it was given, not its completion.
            if outcome.first_dose_at is None:
                return outcome.model_copy(update={"first_dose_at": given, "dosed_route": route})
            return outcome
        case DosingSessionCompleted(route=route, gad7=gad7):
            changes: dict[str, object] = {"doses": outcome.doses + 1}
            if outcome.first_dose_at is None:
                changes |= {"first_dose_at": at, "dosed_route": route}
            return _read(_reached(outcome, Stage.DOSED, **changes), gad7, at)
        case IntegrationSessionRecorded(modality=modality, held_at=held, gad7=gad7):
            modalities = outcome.modalities if modality in outcome.modalities else [*outcome.modalities, modality]
            changed = outcome.model_copy(
                update={"integration_sessions": outcome.integration_sessions + 1, "modalities": modalities}
            )
            return _read(changed, gad7, held)
        case DosingSeriesCompleted():
            return _reached(_entered(outcome, "integration", at), Stage.INTEGRATED)
        case MaintenancePlanRecorded(kind=MaintenanceKind.NONE):
            return outcome  # no maintenance: the course closes as completed from integration
        case MaintenancePlanRecorded():
            return _reached(_entered(outcome, "maintenance", at), Stage.MAINTENANCE)
        case MaintenanceSessionRecorded(held_at=held, gad7=gad7):
            return _read(outcome, gad7, held)
        case CourseClosed(outcome=how):
            return outcome.model_copy(update={"closed_at": at, "outcome": how})
        case CourseOpened():
            raise ValueError("a course is opened only once")
    return outcome


def _reached(outcome: CourseOutcome, stage: Stage, **changes: object) -> CourseOutcome:
    return outcome.model_copy(update={"stage": max(outcome.stage, stage), **changes})


def _entered(outcome: CourseOutcome, phase: str, at: datetime) -> CourseOutcome:
    if phase in outcome.phases:
        return outcome  # maintenance plans are re-recorded: the phase was entered once
    return outcome.model_copy(update={"phases": {**outcome.phases, phase: at}})


def _read(outcome: CourseOutcome, gad7: int | None, at: datetime) -> CourseOutcome:
    if gad7 is None:
        return outcome
    return outcome.model_copy(update={"readings": [*outcome.readings, Gad7Point(at=at, score=gad7)]})
