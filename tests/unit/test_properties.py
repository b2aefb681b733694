"""Random courses against the pure decider: whatever staff send, in whatever order, the rules hold.

A generated course mostly follows the clinic's next sensible step (with the variations real
clinics produce: a high reading, no ride home, a worse patient, a severe side effect, a wrong
route, a dose above the limit, an outdated consent form, ...), sometimes sends any step by anyone,
and lets time pass the way the workflow does: every reminder, overdue flag and lapse fires (a
`Tick`) at its due time. After every step:

- no check-in or dose before candidacy, financial clearance and full preparation, nor while a
  clinical review is pending or the course is on hold; a dose only after its check-in, by the
  plan's route, within the plan's limit; a check-in only with a ride home and a reading below
  the threshold;
- a hold a clinician placed is released only by a clinician;
- a rejected command changes nothing (and `decide` never changes the state it is given); its
  code is snake_case and its message says something;
- versions go 1, 2, 3, ...; the events as the store returns them (`from_row`) fold to the state
  reached step by step, and so does `fold(None, events)`; the state survives a JSON snapshot
  (continue-as-new);
- a closed course rejects every step from every role with `course_closed`, and a Tick on it,
  or on a course on hold, sends nothing;
- after a Tick nothing is due any more (else the workflow's timer loop would spin);
- sessions completed never exceed the plan; the view and its checklist always build.

A failing example prints the course as a story (`note`): time, actor, command, outcome.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import Phase as Stage
from hypothesis import strategies as st

from course.commands import (
    STEPS,
    SYSTEM_ACTOR,
    Actor,
    AdministerDose,
    BloodPressure,
    CheckIn,
    Command,
    Contraindication,
    Dissociation,
    InsuranceStatus,
    MaintenanceKind,
    Modality,
    PatientResponse,
    PlaceHold,
    Reassign,
    RecordClinicalReview,
    RecordConsent,
    RecordDischarge,
    RecordDosingPlan,
    RecordDosingSession,
    RecordEligibility,
    RecordFinancialClearance,
    RecordIntegrationSession,
    RecordIntentions,
    RecordMaintenancePlan,
    RecordMaintenanceSession,
    RecordMonitoringReading,
    RecordOrientation,
    RecordPriorAuthorization,
    RecordSupportPerson,
    ReleaseHold,
    ReviewDecision,
    Role,
    Route,
    ScheduleSession,
    Sedation,
    Tick,
    Vitals,
    Withdraw,
)
from course.decider import decide
from course.errors import RuleViolation
from course.events import (
    CheckedIn,
    CourseOpened,
    DomainEvent,
    DosingSessionCompleted,
    EventEnvelope,
    EventMetadata,
    FollowUpOverdue,
    HoldPlaced,
    MaintenanceOverdue,
    MaintenanceSessionRecorded,
)
from course.policy import CoursePolicy
from course.rules import CLINICAL_ROLES, STEP_ROLES, at_or_above, missing_clearance, missing_preparation
from course.state import CourseState, Phase, evolve, fold
from course.timing import next_due, next_for_staff, pending
from course.view import CourseView, checklist, view
from tests import story

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
STAFF = {role: Actor(id=f"{role.value}-1", role=role) for role in Role}
DEPTH: dict[Phase, int] = {phase: rank for rank, phase in enumerate(Phase) if phase is not Phase.CLOSED}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MAX_STEPS = 120
INSURANCE = [None, *InsuranceStatus]
T = TypeVar("T")


def rarely(rng: random.Random, p: float) -> bool:
    """A variation on the ordinary, with probability p."""
    return rng.random() < p


def pick(rng: random.Random, options: list[tuple[float, T]]) -> T:
    """A weighted choice: the ordinary option first, its variations after."""
    u = rng.random() * sum(weight for weight, _ in options)
    for weight, value in options:
        if u < weight:
            return value
        u -= weight
    return options[-1][1]


class CourseRun:
    """One course: decides, appends envelopes, folds, and checks every invariant at every step."""

    def __init__(self, insurance: InsuranceStatus | None, *, also: frozenset[str] = frozenset()) -> None:
        self.now = T0
        self.log: list[EventEnvelope] = []
        self.state: CourseState | None = None
        self.replica: CourseState | None = None  # folded from envelopes as the event store returns them
        self.also = also  # checks beyond the core ones: "awaiting", "hold_pauses_follow_ups"
        self.deepest = Phase.ASSESSMENT
        self.doses = 0
        self.maintenance_sessions = 0
        self.rejections: Counter[str] = Counter()
        self.eligibility_sent = insurance is not None
        opened = CourseOpened(
            course_id=UUID(int=1),
            patient_id="pt-0001",
            clinician_id=story.PRESCRIBER.id,
            therapist_id=story.THERAPIST.id,
            policy=CoursePolicy(),
        )
        self._append([opened], story.OPERATIONS)
        self.check_state()
        if insurance is not None:
            self.submit(SYSTEM_ACTOR, RecordEligibility(status=insurance))

    @property
    def course(self) -> CourseState:
        assert self.state is not None
        return self.state

    def _append(self, events: list[DomainEvent], actor: Actor) -> None:
        for event_ in events:
            envelope = EventEnvelope(
                event_id=UUID(int=len(self.log) + 1),
                stream_id="course-property",
                version=len(self.log) + 1,
                occurred_at=self.now,
                event=event_,
                metadata=EventMetadata(actor=actor, workflow_id="course-property", run_id="run"),
            )
            self.log.append(envelope)
            self.state = evolve(self.state, envelope)
            assert EventEnvelope.model_validate_json(envelope.model_dump_json()) == envelope, "no round trip"
            stored = EventEnvelope.from_row(
                event_id=envelope.event_id,
                stream_id=envelope.stream_id,
                version=envelope.version,
                type=envelope.type,
                data=envelope.data(),
                metadata=envelope.metadata.model_dump(mode="json"),
                occurred_at=envelope.occurred_at,
            )
            self.replica = evolve(self.replica, stored)

    def submit(self, actor: Actor, command: Command) -> list[DomainEvent] | RuleViolation:
        before = self.course
        snapshot = before.model_dump_json()
        try:
            events = decide(before, command, actor, self.now)
        except RuleViolation as violation:
            note(f"{self.now:%Y-%m-%d %H:%M} {actor.id}: {command!r} -> rejected {violation.code}")
            self._check_rejection(before, snapshot, command, violation)
            return violation
        note(f"{self.now:%Y-%m-%d %H:%M} {actor.id}: {command!r} -> {[e.type for e in events]}")
        assert before.model_dump_json() == snapshot, "decide changed the state it was given"
        self._check_accepted(before, command, events)
        self._check_hold_authority(before, actor, command, events)
        self._append(events, actor)
        self.doses += sum(isinstance(e, DosingSessionCompleted) for e in events)
        self.maintenance_sessions += sum(isinstance(e, MaintenanceSessionRecorded) for e in events)
        self.check_state()
        if isinstance(command, Tick):
            self._check_tick_caught_up()
        if isinstance(command, ReleaseHold) and "hold_pauses_follow_ups" in self.also:
            assert before.held_since is not None
            self._check_hold_time_not_counted(before.held_since)
        return events

    def _check_rejection(self, before: CourseState, snapshot: str, command: Command, violation: RuleViolation) -> None:
        self.rejections[violation.code] += 1
        assert SNAKE_CASE.match(violation.code), f"rejection code {violation.code!r} is not snake_case"
        assert violation.message.strip(), f"rejection {violation.code} has no message"
        assert before.model_dump_json() == snapshot, f"the rejected {command.step} changed the state"
        assert self.state is before and self.course.version == len(self.log)
        assert not isinstance(command, Tick), "a Tick is never rejected"
        if before.terminal:
            assert violation.code == "course_closed", f"closed course rejected {command.step} with {violation.code}"

    def _check_accepted(self, before: CourseState, command: Command, events: list[DomainEvent]) -> None:
        if before.terminal:
            assert isinstance(command, Tick), f"a closed course accepted {command.step}"
            assert events == [], f"a Tick on a closed course produced {[e.type for e in events]}"
        if before.on_hold and isinstance(command, Tick):
            assert events == [], f"a course on hold was sent {[e.type for e in events]}"
        for event_ in events:
            if isinstance(event_, CheckedIn | DosingSessionCompleted):
                assert before.candidacy_confirmed, f"{event_.type} before candidacy was confirmed"
                assert missing_clearance(before) is None, f"{event_.type} without financial clearance"
                assert missing_preparation(before) == [], f"{event_.type} with {missing_preparation(before)} missing"
                assert not before.review_required, f"{event_.type} while a clinical review is required"
                assert not before.on_hold, f"{event_.type} while the course is on hold"
            if isinstance(event_, CheckedIn):
                assert isinstance(command, CheckIn) and command.ride_home_arranged, "checked in without a ride home"
                assert not at_or_above(event_.vitals, before.policy.bp_threshold), "checked in above the threshold"
            if isinstance(event_, DosingSessionCompleted):
                assert before.plan is not None and before.checked_in == event_.session_number, "dosed unchecked"
                assert event_.route == before.current_route, "dosed by a route the plan does not name"
                assert event_.dose_mg_per_kg <= before.plan.max_dose_mg_per_kg, "dosed above the plan's limit"

    def _check_hold_authority(
        self, before: CourseState, actor: Actor, command: Command, events: list[DomainEvent]
    ) -> None:
        for event_ in events:
            if isinstance(event_, HoldPlaced):
                assert event_.clinical == (actor.role in CLINICAL_ROLES), f"a hold by {actor.role} marked otherwise"
        if isinstance(command, ReleaseHold) and before.hold_clinical:
            assert actor.role in CLINICAL_ROLES, f"a clinician's hold released by {actor.role.value}"

    def check_state(self) -> None:
        state = self.course
        assert [e.version for e in self.log] == list(range(1, len(self.log) + 1))
        assert state.version == len(self.log)
        assert self.replica == state, "the stored events fold to a different state"
        assert CourseState.model_validate_json(state.model_dump_json()) == state, "snapshot does not round-trip"
        planned = state.plan.planned_sessions if state.plan else 0
        assert state.sessions_completed <= planned, f"{state.sessions_completed} sessions of {planned} planned"
        course_view = view(state, self.now)
        checklist(course_view)
        # NextDueAt (what staff are asked for next) is the first pending item not for the patient:
        # never earlier than the course's next wake-up, and nothing for staff comes before it.
        staff = next_for_staff(state, self.now)
        ahead = pending(state, self.now)
        assert staff is None or (staff in ahead and staff.recipient != "patient"), "staff due is not pending for staff"
        before_it = ahead[: ahead.index(staff)] if staff else ahead
        assert all(item.recipient == "patient" for item in before_it), "an earlier item for staff was skipped"
        assert CourseView.model_validate_json(course_view.model_dump_json()) == course_view, "view does not round-trip"
        assert course_view.version == state.version
        if "awaiting" in self.also:
            assert (course_view.awaiting == []) == state.terminal, (
                f"awaiting {course_view.awaiting} in phase {state.phase.value}"
            )
        if not state.terminal and DEPTH[state.phase] > DEPTH[self.deepest]:
            self.deepest = state.phase

    def _check_tick_caught_up(self) -> None:
        # The workflow sleeps until next_due and ticks when it is due: anything still due at
        # `now` after a Tick would spin that loop forever.
        due = next_due(self.course, self.now)
        assert due is None or due.at > self.now, f"{due.key if due else ''} still due after a Tick"
        assert decide(self.course, Tick(), SYSTEM_ACTOR, self.now) == [], "a second Tick fired again"

    def _check_hold_time_not_counted(self, held_since: datetime) -> None:
        # state.py: "a paused course should not lapse, or be flagged overdue, for time in which
        # the clinic told it to wait". The workflow re-plans (and ticks) as soon as a hold ends.
        fired = self.submit(SYSTEM_ACTOR, Tick())
        assert isinstance(fired, list)
        # A due time is shifted by the time on hold: unshifted, one already due before the hold
        # began (its timer ran late) is rightly flagged at once.
        held = self.now - held_since
        late = [
            e.key for e in fired if isinstance(e, FollowUpOverdue | MaintenanceOverdue) and e.due_at - held > held_since
        ]
        assert not late, f"on release from a hold placed {held_since:%Y-%m-%d %H:%M}, flagged overdue at once: {late}"

    def wait(self, delta: timedelta, *, timers_fire: bool = True) -> None:
        """Time passes; the workflow's timers fire at their due times, as `_keep_time` does."""
        until = self.now + delta
        while timers_fire and not self.course.terminal:
            due = next_due(self.course, self.now)
            if due is None or due.at > until:
                break
            self.now = max(self.now, due.at)
            self.submit(SYSTEM_ACTOR, Tick())
        self.now = until

    def check_closed_to_everything(self) -> None:
        rng = random.Random(0)
        for step in STEPS:
            for actor in STAFF.values():
                command = build(step, self.course, self.now, rng, odd=0.0)
                result = self.submit(actor, command)
                assert isinstance(result, RuleViolation), f"a closed course accepted {step}"
        self.wait(timedelta(days=400), timers_fire=False)
        assert self.submit(SYSTEM_ACTOR, Tick()) == []


# -- what staff send -------------------------------------------------------------------------------


def _vitals(rng: random.Random, odd: float) -> Vitals:
    if rarely(rng, odd):
        return rng.choice([story.HIGH, Vitals(systolic=150, diastolic=100, heart_rate=80)])
    return story.CALM


def _before(now: datetime, rng: random.Random, odd: float) -> datetime:
    """When something was held or signed: just now, or (a clock error) tomorrow."""
    return now + timedelta(days=1) if rarely(rng, odd) else now - timedelta(minutes=rng.randint(0, 600))


def _assessment(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    changes: dict[str, object] = {"gad7": rng.randint(0, 21)}
    if rarely(rng, odd / 4):
        changes["blood_pressure"] = rng.choice(
            [{"systolic": 170, "diastolic": 95}, {"systolic": 150, "diastolic": 100}]
        )
    if rarely(rng, odd / 2):
        changes["contraindications"] = [rng.choice(list(Contraindication))]
        if not rarely(rng, 0.5):
            changes["relative_contraindication_rationale"] = "Stable for a year; cardiology agrees"
    return story.assessment(**changes)


def _dosing_plan(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    sessions = pick(rng, [(3, (1, 3)), (3, (4, 6)), (1, (7, 12)), (odd, (13, 52))])
    start = rng.choice([0.3, 0.5, 0.8])
    return RecordDosingPlan(
        route=rng.choice(list(Route)),
        planned_sessions=rng.randint(*sessions),
        starting_dose_mg_per_kg=start,
        max_dose_mg_per_kg=start + rng.choice([0.0, 0.2, 0.7]),
    )


def _next_session(state: CourseState, rng: random.Random, odd: float) -> int:
    expected = state.checked_in or state.sessions_completed + 1
    return rng.randint(1, 14) if rarely(rng, odd) else expected


def _check_in(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    return CheckIn(
        session_number=_next_session(state, rng, odd),
        vitals=_vitals(rng, odd),
        ride_home_arranged=not rarely(rng, odd),
    )


def _dosing_session(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    route = state.current_route or Route.IV_INFUSION
    limit = state.plan.max_dose_mg_per_kg if state.plan else 1.0
    severe = rarely(rng, odd)
    return RecordDosingSession(
        session_number=_next_session(state, rng, odd),
        route=rng.choice(list(Route)) if rarely(rng, odd) else route,
        dose_mg_per_kg=min(limit + 0.5, 5.0) if rarely(rng, odd) else state.current_dose_mg_per_kg or 0.5,
        post_vitals=_vitals(rng, odd),
        side_effects=[{"effect": "dissociation", "severity": "severe" if severe else "mild"}],
        patient_response=pick(
            rng, [(6, PatientResponse.BETTER), (3, PatientResponse.SAME), (odd * 12, PatientResponse.WORSE)]
        ),
        gad7=rng.choice([None, rng.randint(0, 21)]),
    )


def _clinical_review(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    decision = pick(
        rng,
        [
            (4, ReviewDecision.CONTINUE),
            (2, ReviewDecision.ADJUST_DOSE),
            (1, ReviewDecision.CHANGE_ROUTE),
            (1, ReviewDecision.END_DOSING),
            (0.5, ReviewDecision.CLOSE_COURSE),
        ],
    )
    limit = state.plan.max_dose_mg_per_kg if state.plan else 1.0
    return RecordClinicalReview(
        decision=decision,
        new_dose_mg_per_kg=min(limit + 0.5, 5.0) if rarely(rng, odd) else limit * rng.choice([0.5, 1.0]),
        new_route=rng.choice(list(Route)),
        rationale="Reviewed the last session with the patient",
    )


def _maintenance_plan(state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    kind = pick(rng, [(4, MaintenanceKind.KETAMINE), (2, MaintenanceKind.THERAPY_ONLY), (1, MaintenanceKind.NONE)])
    interval = rng.choice([10, 400]) if rarely(rng, odd) else rng.randint(30, 365)
    return RecordMaintenancePlan(kind=kind, interval_days=None if kind is MaintenanceKind.NONE else interval)


Builder = Callable[[CourseState, datetime, random.Random, float], Command]
BUILDERS: dict[str, Builder] = {
    "assessment": _assessment,
    "financial-clearance": lambda s, now, rng, odd: RecordFinancialClearance(
        self_pay=rng.random() < 0.5, estimated_cost_acknowledged=not rarely(rng, odd)
    ),
    "prior-authorization": lambda s, now, rng, odd: RecordPriorAuthorization(
        reference=f"PA-{rng.randint(1, 99)}", approved=not rarely(rng, max(odd, 0.3))
    ),
    "intentions": lambda s, now, rng, odd: RecordIntentions(goals="Fewer panic episodes at work"),
    "consent": lambda s, now, rng, odd: RecordConsent(
        form_version="2025-06" if rarely(rng, odd) else s.policy.consent_form_version,
        signed_at=_before(now, rng, odd),
    ),
    "support-person": lambda s, now, rng, odd: RecordSupportPerson(
        name="Sam Support", relationship="spouse", phone="555-0100"
    ),
    "dosing-plan": _dosing_plan,
    "orientation": lambda s, now, rng, odd: RecordOrientation(topics=["what_to_expect", "ride_home"]),
    "schedule-session": lambda s, now, rng, odd: ScheduleSession(
        session_number=_next_session(s, rng, odd),
        scheduled_at=now + timedelta(hours=-2 if rarely(rng, odd) else rng.randint(1, 24 * 14)),
    ),
    "check-in": _check_in,
    "dosing-session": _dosing_session,
    "clinical-review": _clinical_review,
    # Monitoring after the dose: refused (monitoring_not_in_policy) unless the policy monitors;
    # tests/unit/test_monitoring.py drives monitored courses through them.
    "dose-administered": lambda s, now, rng, odd: AdministerDose(
        session_number=max(1, s.checked_in or s.sessions_completed + 1),
        route=s.current_route or Route.IV_INFUSION,
        dose_mg_per_kg=0.5,
        given_at=_before(now, rng, odd),
    ),
    "monitoring-reading": lambda s, now, rng, odd: RecordMonitoringReading(
        session_number=max(1, s.sessions_completed + 1),
        taken_at=_before(now, rng, odd),
        blood_pressure=BloodPressure(systolic=rng.randint(110, 175), diastolic=rng.randint(70, 105)),
        heart_rate=80,
        spo2=rng.randint(90, 100),
        sedation=Sedation(score=rng.randint(3, 5)),
        dissociation=rng.choice(list(Dissociation)),
    ),
    "discharge": lambda s, now, rng, odd: RecordDischarge(
        session_number=max(1, s.sessions_completed + 1),
        discharged_at=_before(now, rng, odd),
        collected_by="Sam Support",
        relationship="spouse",
        patient_response=rng.choice(list(PatientResponse)),
    ),
    "integration-session": lambda s, now, rng, odd: RecordIntegrationSession(
        modality=rng.choice(list(Modality)), held_at=_before(now, rng, odd), gad7=rng.choice([None, 8, 12])
    ),
    "maintenance-plan": _maintenance_plan,
    "maintenance-session": lambda s, now, rng, odd: RecordMaintenanceSession(
        kind=rng.choice([MaintenanceKind.KETAMINE, MaintenanceKind.THERAPY_ONLY]),
        held_at=_before(now, rng, odd),
        gad7=rng.randint(0, 21),
    ),
    "hold": lambda s, now, rng, odd: PlaceHold(reason="patient_travel"),
    "release": lambda s, now, rng, odd: ReleaseHold(),
    "withdraw": lambda s, now, rng, odd: Withdraw(reason="patient_request"),
    "reassign": lambda s, now, rng, odd: Reassign(clinician_id="dr-new", therapist_id=rng.choice([None, "th-new"])),
}
assert set(BUILDERS) == set(STEPS)


def build(step: str, state: CourseState, now: datetime, rng: random.Random, odd: float) -> Command:
    return BUILDERS[step](state, now, rng, odd)


def _phase_steps(state: CourseState) -> list[tuple[float, str]]:
    """The steps this phase is waiting for, plus the near misses staff make (a dose before check-in)."""
    match state.phase:
        case Phase.ASSESSMENT:
            return [(5, "assessment")]
        case Phase.PREPARATION:
            options: list[tuple[float, str]] = [(3, step) for step in missing_preparation(state)]
            clearance = missing_clearance(state)
            if clearance == "eligibility":
                options.append((1, "financial-clearance"))  # self-pay settles it without the payer
            elif clearance is not None:
                options.append((3, clearance))
            return [*options, (1, "schedule-session"), (0.5, "check-in"), (0.3, "hold")]
        case Phase.DOSING:
            options = [(6.0, "check-in")] if state.checked_in is None else [(6, "dosing-session"), (0.5, "check-in")]
            if not state.integration_since_last_dose:
                options.append((2, "integration-session"))
            if state.checked_in is None:
                options.append((0.5, "dosing-session"))
            return [*options, (1, "schedule-session"), (1, "hold")]
        case Phase.INTEGRATION if state.post_series_integration_sessions == 0:
            return [(5, "integration-session"), (0.5, "maintenance-plan"), (0.3, "check-in")]
        case Phase.INTEGRATION:
            return [(5, "maintenance-plan"), (1, "integration-session")]
        case Phase.MAINTENANCE:
            return [(5, "maintenance-session"), (1, "maintenance-plan"), (1, "integration-session"), (0.3, "hold")]
    return []


def next_sensible_step(run: CourseRun, rng: random.Random) -> str:
    """What a clinic would do next in this state (weighted), so generated courses get deep.

    On hold or under review, staff mostly clear that first, but sometimes try the blocked step
    anyway: exactly the moments the dosing gates exist for.
    """
    state, options = run.course, _phase_steps(run.course)
    if state.on_hold:
        options = [(6, "release"), *((w / 3, step) for w, step in options)]
    elif state.review_required:
        options = [(6, "clinical-review"), *((w / 3, step) for w, step in options)]
    if state.insurance is None and not run.eligibility_sent:
        options.append((1, "eligibility"))  # a slow payer: the answer may come at any point
    return pick(rng, options)


Days = tuple[float, float]
# (weight, (from, to) days): mostly hours between steps, sometimes weeks or months; a hold is
# for a while, so a paused course mostly waits days or weeks before anyone releases it.
WAITS: list[tuple[float, Days]] = [(5, (0, 0.1)), (4, (0.1, 1)), (3, (1, 7)), (1, (7, 30)), (0.5, (30, 200))]
PAUSED_WAITS: list[tuple[float, Days]] = [(3, (1, 7)), (2, (7, 30)), (1, (30, 120))]
# Any step by anyone; withdrawing ends the course, so it is drawn less often to let courses get deep.
ANYTHING = [(0.25 if step == "withdraw" else 1.0, step) for step in [*STEPS, "eligibility"]]


def play_one_move(run: CourseRun, rng: random.Random) -> None:
    paused = run.course.on_hold
    move = pick(rng, [(8, "next"), (2, "anything"), (6 if paused else 2, "wait"), (0.5, "tick"), (0.2, "late timers")])
    if move in ("wait", "late timers"):
        days = pick(rng, PAUSED_WAITS if paused else WAITS)
        run.wait(timedelta(days=rng.uniform(*days)), timers_fire=move == "wait")
        return
    if move == "tick":
        run.submit(SYSTEM_ACTOR, Tick())
        return
    sensible = move == "next"
    step = next_sensible_step(run, rng) if sensible else pick(rng, ANYTHING)
    if step == "eligibility":
        if not run.eligibility_sent:  # the workflow asks the payer once per course
            run.eligibility_sent = True
            status = pick(rng, [(3, InsuranceStatus.COVERED), *((2, s) for s in list(InsuranceStatus)[1:])])
            run.submit(SYSTEM_ACTOR, RecordEligibility(status=status))
        return
    allowed = sorted(STEP_ROLES[step])
    role = rng.choice(allowed) if sensible and not rarely(rng, 0.1) else rng.choice(list(Role))
    run.submit(STAFF[role], build(step, run.course, run.now, rng, odd=0.12 if sensible else 0.5))


def play_course(
    rng: random.Random, steps: int, insurance: InsuranceStatus | None, also: frozenset[str] = frozenset()
) -> CourseRun:
    run = CourseRun(insurance, also=also)
    for _ in range(steps):
        if run.course.terminal:
            break
        # One drawn number per move: hypothesis shrinks a course by dropping and simplifying
        # whole moves, which keeps shrinking fast however many choices a move makes.
        play_one_move(run, random.Random(rng.getrandbits(32)))
    if run.course.terminal:
        run.check_closed_to_everything()
    assert fold(None, run.log) == run.course, "fold(None, events) differs from the state reached step by step"
    return run


def _report(run: CourseRun) -> None:
    event(f"deepest phase: {run.deepest.value}")
    event(f"outcome: {run.course.outcome or 'open'}")
    event(f"doses administered: {min(run.doses, 4)}{'+' if run.doses >= 4 else ''}")
    event(f"maintenance sessions: {min(run.maintenance_sessions, 3)}{'+' if run.maintenance_sessions >= 3 else ''}")


# A course is up to MAX_STEPS moves, so examples are slow and large by design.
EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COURSES = {
    "rng": st.randoms(use_true_random=False),
    "steps": st.integers(1, MAX_STEPS),
    "insurance": st.sampled_from(INSURANCE),
}


@EXAMPLES
@given(**COURSES)
def test_clinical_safety_and_event_sourcing_hold_at_every_step(
    rng: random.Random, steps: int, insurance: InsuranceStatus | None
) -> None:
    """No dose before candidacy, money and preparation, nor under review or hold; rejections change
    nothing and say why; versions follow one another; the stored events fold to the same state;
    a closed course accepts nothing; sessions never exceed the plan; the view always builds."""
    _report(play_course(rng, steps, insurance))


@settings(EXAMPLES, max_examples=200)
@given(**COURSES)
def test_an_open_course_always_awaits_something_and_a_closed_one_nothing(
    rng: random.Random, steps: int, insurance: InsuranceStatus | None
) -> None:
    """The same courses with the view's `awaiting` checked too (operations filter on it: an open
    course awaiting nothing drops out of every queue). Kept apart so that a view bug cannot hide
    a clinical-safety one."""
    play_course(rng, steps, insurance, also=frozenset({"awaiting"}))


@settings(EXAMPLES, max_examples=150)
@given(**COURSES)
def test_time_on_hold_never_makes_a_follow_up_overdue(
    rng: random.Random, steps: int, insurance: InsuranceStatus | None
) -> None:
    """The same courses, ticking the moment a hold is released: an integration or maintenance
    follow-up that fell due while the clinic had the course paused is not flagged overdue at once."""
    play_course(rng, steps, insurance, also=frozenset({"hold_pauses_follow_ups"}))


def test_generated_courses_reach_dosing_integration_and_maintenance() -> None:
    """The properties above are not vacuous: many generated courses get deep."""
    runs: list[CourseRun] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None, phases=[Stage.generate])
    @given(**COURSES)
    def course(rng: random.Random, steps: int, insurance: InsuranceStatus | None) -> None:
        runs.append(play_course(rng, steps, insurance))

    course()

    def share(reached: Iterable[bool]) -> float:
        return sum(reached) / len(runs)

    reached = Counter(run.deepest.value for run in runs)
    assert share(run.doses >= 1 for run in runs) >= 0.4, reached
    assert share(run.doses >= 3 for run in runs) >= 0.15, reached
    assert share(run.deepest in (Phase.INTEGRATION, Phase.MAINTENANCE) for run in runs) >= 0.2, reached
    assert share(run.maintenance_sessions >= 1 for run in runs) >= 0.15, reached
    assert share(run.course.outcome == "completed" for run in runs) >= 0.05, reached
