"""After the dose: each reason a discharge is refused, each clock's due time, when the prescriber is called."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.commands import (
    AdministerDose,
    BloodPressure,
    Dissociation,
    PlaceHold,
    RecordMonitoringReading,
    SideEffect,
    Tick,
)
from course.errors import RuleViolation
from course.monitored import MonitoredSession, Reading
from course.phases.monitoring import (
    discharge_refusal,
    escalation_at,
    late_at,
    recheck_due,
    review_reasons,
)
from course.policy import BloodPressureThreshold, CoursePolicy, MonitoringPolicy
from course.view import checklist, view
from tests import story
from tests.clinic import Clinic

GIVEN = datetime(2027, 3, 14, 10, 42, tzinfo=UTC)
POLICY = MonitoringPolicy()


def reading(minutes: float, systolic: int = 128, diastolic: int = 80, **changes: object) -> Reading:
    fields: dict[str, object] = {
        "taken_at": GIVEN + timedelta(minutes=minutes),
        "blood_pressure": BloodPressure(systolic=systolic, diastolic=diastolic),
        "heart_rate": 76,
        "spo2": 98,
        "sedation_score": 5,
        "dissociation": Dissociation.RESOLVED,
    }
    return Reading.model_validate(fields | changes)


def session(*readings: Reading, route: str = "iv_infusion") -> MonitoredSession:
    return MonitoredSession(session_number=1, route=route, dose_mg_per_kg=0.5, given_at=GIVEN, readings=readings)


def at(minutes: float) -> datetime:
    return GIVEN + timedelta(minutes=minutes)


def refusal(s: MonitoredSession, minutes: float, ride: bool = True) -> str | None:
    refused = discharge_refusal(s, POLICY, at(minutes), ride_handoff=ride)
    return refused.code if refused else None


def test_discharge_before_the_minimum_observation_names_the_minutes_left() -> None:
    refused = discharge_refusal(session(reading(100)), POLICY, at(101), ride_handoff=True)
    assert refused is not None and refused.code == "observation_incomplete"
    assert refused.message == (
        "The patient has been observed for 101 minutes after the dose; 2 hours are needed by this route: "
        "19 minutes left."
    )


def test_the_minimum_is_per_route_from_the_policy() -> None:
    quick = MonitoringPolicy(minimum_observation={"intranasal": timedelta(minutes=60)})
    nasal = session(reading(55), route="intranasal")
    assert discharge_refusal(nasal, quick, at(61), ride_handoff=True) is None
    assert quick.minimum_for("iv_infusion") == timedelta(minutes=60)  # unknown route: the longest given


@pytest.mark.parametrize(
    ("readings", "code"),
    [
        ((), "reading_required"),
        ((reading(80),), "reading_required"),  # 41 minutes old at discharge
        ((reading(115, systolic=162),), "bp_not_settled"),
        ((reading(115, diastolic=100),), "bp_not_settled"),
        ((reading(115, sedation_score=4),), "still_sedated"),
        ((reading(115, dissociation=Dissociation.PRESENT),), "dissociation_unresolved"),
        ((reading(115, spo2=92),), "spo2_low"),
    ],
)
def test_each_reason_a_discharge_is_refused(readings: tuple[Reading, ...], code: str) -> None:
    assert refusal(session(*readings), 121) == code


def test_no_ride_handoff_no_discharge_and_with_one_the_patient_leaves() -> None:
    ready = session(reading(45), reading(115))
    assert refusal(ready, 121, ride=False) == "no_ride_handoff"
    assert refusal(ready, 121) is None


def test_blood_pressure_is_due_40_minutes_after_the_dose_then_every_30_while_high() -> None:
    assert recheck_due(session(), POLICY) == at(40)
    assert late_at(session(), POLICY) == at(50)
    high = session(reading(41, systolic=165))
    assert recheck_due(high, POLICY) == at(71) and late_at(high, POLICY) == at(81)
    settled = session(reading(41, systolic=165), reading(70))
    assert recheck_due(settled, POLICY) is None and late_at(settled, POLICY) is None
    assert escalation_at(settled, POLICY) == at(240)


def test_two_high_readings_in_a_row_or_a_severe_side_effect_call_the_prescriber() -> None:
    assert review_reasons(session(reading(41, systolic=165)), POLICY) == []
    assert review_reasons(session(reading(41, systolic=165), reading(71, systolic=170)), POLICY) == [
        "bp_elevated_twice"
    ]
    assert review_reasons(session(reading(41, systolic=165), reading(71), reading(100, systolic=165)), POLICY) == []
    severe = reading(41, side_effects=[SideEffect(effect="nausea", severity="severe")])  # type: ignore[arg-type]
    assert review_reasons(session(severe), POLICY) == ["severe_side_effect"]


readings = st.lists(
    st.builds(
        lambda minutes, systolic, sedation, resolved, spo2: reading(
            minutes,
            systolic=systolic,
            sedation_score=sedation,
            dissociation=Dissociation.RESOLVED if resolved else Dissociation.PRESENT,
            spo2=spo2,
        ),
        st.integers(0, 300),
        st.integers(90, 200),
        st.integers(0, 5),
        st.booleans(),
        st.integers(85, 100),
    ),
    max_size=8,
).map(lambda rs: tuple(sorted(rs, key=lambda r: r.taken_at)))


@given(readings, st.integers(0, 400), st.booleans(), st.integers(30, 240))
def test_no_discharge_before_the_minimum_or_with_the_last_reading_high(
    taken: tuple[Reading, ...], minutes: int, ride: bool, minimum: int
) -> None:
    policy = MonitoringPolicy(
        minimum_observation={"iv_infusion": timedelta(minutes=minimum)},
        discharge_bp_threshold=BloodPressureThreshold(systolic=160, diastolic=100),
    )
    before = tuple(r for r in taken if r.taken_at <= at(minutes))
    s = session(*before)
    if discharge_refusal(s, policy, at(minutes), ride_handoff=ride) is None:
        assert minutes >= minimum
        assert s.last is not None and s.last.blood_pressure.systolic < 160
        assert s.last.sedation_score == 5 and s.last.dissociation is Dissociation.RESOLVED and ride
        assert at(minutes) - s.last.taken_at <= policy.reading_fresh_within


# --- the monitored steps, decided on a course whose policy monitors ----------------------------

MONITORED = CoursePolicy(monitoring=MonitoringPolicy())


def dosed(clinic: Clinic) -> datetime:
    """A monitored course through check-in and the dose given now; returns when it was given."""
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=1)))
    clinic.record(story.NURSE, story.check_in(1))
    assert clinic.rejects(story.NURSE, story.dose(1)).code == "monitoring_required"
    given = clinic.now
    dose = AdministerDose(session_number=1, route="iv_infusion", dose_mg_per_kg=0.5, given_at=given)  # type: ignore[arg-type]
    assert clinic.record(story.NURSE, dose) == ["DoseAdministered"]
    return given


def chair_reading(at: datetime, systolic: int = 128, **changes: object) -> RecordMonitoringReading:
    """story.reading with this module's vitals (its messages quote /80 and the 76 heart rate)."""
    vitals: dict[str, object] = {
        "blood_pressure": {"systolic": systolic, "diastolic": 80},
        "heart_rate": 76,
        "spo2": 98,
    }
    return story.reading(at, systolic, **(vitals | changes))


discharge = story.discharge


def test_a_monitored_dose_ends_in_a_discharge_that_completes_the_session() -> None:
    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    assert clinic.course.monitoring is not None and clinic.course.checked_in == 1
    clinic.now = given + timedelta(minutes=60)
    early = clinic.rejects(story.NURSE, discharge(clinic.now))
    assert early.code == "observation_incomplete" and "60 minutes left" in early.message
    clinic.now = given + timedelta(minutes=100)
    assert clinic.record(story.NURSE, chair_reading(clinic.now)) == ["MonitoringReadingRecorded"]
    clinic.now = given + timedelta(minutes=121)
    events = clinic.record(story.NURSE, discharge(clinic.now))
    assert events == ["PatientDischarged", "DosingSessionCompleted"]
    course = clinic.course
    assert course.monitoring is None and course.sessions_completed == 1 and course.checked_in is None
    completed = clinic.log[-1].event
    assert completed.post_vitals.systolic == 128 and completed.patient_response == "better"  # type: ignore[union-attr]


def test_two_high_readings_call_the_prescriber_once_and_a_late_recheck_flags_the_course() -> None:
    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    # Nobody took the 40-minute reading: at 50 minutes the course is flagged and the nurse on duty told.
    clinic.record(story.OPERATIONS, Tick())  # the session's own day-before reminder, due at once
    assert clinic.advance(minutes=51) == ["FollowUpOverdue", "ReminderSent"]
    late = clinic.log[-1].event
    assert late.purpose == "monitoring_recheck_late" and late.recipient == "operations"  # type: ignore[union-attr]
    assert clinic.course.overdue == [f"monitoring-1-recheck-late-{(given + timedelta(minutes=40)).isoformat()}"]
    assert clinic.record(story.NURSE, chair_reading(clinic.now, systolic=165)) == ["MonitoringReadingRecorded"]
    assert clinic.course.overdue == []  # the reading answered it
    clinic.now += timedelta(minutes=30)
    events = clinic.record(story.NURSE, chair_reading(clinic.now, systolic=168))
    assert events == ["MonitoringReadingRecorded", "ClinicalReviewRequired", "ReminderSent"]
    assert clinic.log[-1].event.purpose == "monitoring_review"  # type: ignore[union-attr]
    clinic.now += timedelta(minutes=30)
    assert clinic.record(story.NURSE, chair_reading(clinic.now, systolic=170)) == ["MonitoringReadingRecorded"]


def test_not_discharged_after_four_hours_escalates_to_the_prescriber_even_on_hold() -> None:
    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    clinic.now = given + timedelta(minutes=45)
    clinic.record(story.NURSE, chair_reading(clinic.now))  # settled: no recheck clock any more
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert clinic.advance(minutes=194) == []
    assert clinic.advance(minutes=2) == ["FollowUpOverdue", "ReminderSent"]
    escalation = clinic.log[-1].event
    assert escalation.purpose == "monitoring_escalation" and escalation.recipient == "clinician"  # type: ignore[union-attr]


def test_the_monitored_steps_are_refused_where_they_do_not_belong() -> None:
    unmonitored = Clinic()
    unmonitored.through_preparation()
    unmonitored.record(story.NURSE, story.check_in(1))
    dose = AdministerDose(session_number=1, route="iv_infusion", dose_mg_per_kg=0.5, given_at=unmonitored.now)  # type: ignore[arg-type]
    assert unmonitored.rejects(story.NURSE, dose).code == "monitoring_not_in_policy"
    assert unmonitored.record(story.NURSE, story.dose(1))[0] == "DosingSessionCompleted"  # the one-step path

    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    assert clinic.rejects(story.NURSE, chair_reading(given - timedelta(minutes=6))).code == "reading_before_dose"
    assert clinic.record(story.NURSE, chair_reading(given - timedelta(seconds=40))) == ["MonitoringReadingRecorded"]
    assert clinic.rejects(story.THERAPIST, chair_reading(given)).code == "role_not_permitted"
    wrong = chair_reading(given).model_copy(update={"session_number": 2})
    assert clinic.rejects(story.NURSE, wrong).code == "not_in_monitoring"
    again = AdministerDose(session_number=1, route="iv_infusion", dose_mg_per_kg=0.5, given_at=given)  # type: ignore[arg-type]
    assert clinic.rejects(story.NURSE, again).code == "already_recorded"


def test_the_temporal_ui_checklist_says_since_when_and_when_the_recheck_is_due_without_readings() -> None:
    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    clinic.now = given + timedelta(minutes=45)
    clinic.record(story.NURSE, chair_reading(clinic.now, systolic=165))
    text = checklist(view(clinic.course, clinic.now))
    since, due, leave = given, given + timedelta(minutes=75), given + timedelta(hours=2)
    assert (
        f"- in monitoring since {since:%H:%M} UTC (session 1); BP recheck due {due:%H:%M}; discharge from "
        f"{leave:%H:%M}" in text
    )
    assert "165" not in text  # the reading itself is clinical


actions = st.lists(
    st.tuples(
        st.sampled_from(["reading", "discharge", "tick"]),
        st.integers(1, 40),  # minutes after the previous action
        st.integers(110, 180),  # systolic
        st.integers(3, 5),  # sedation
        st.booleans(),  # dissociation resolved
        st.integers(90, 100),  # SpO2
    ),
    max_size=15,
)


@given(actions)
def test_any_sequence_of_readings_and_discharges_is_safe_and_ends_discharged_or_escalated(
    steps: list[tuple[str, int, int, int, bool, int]],
) -> None:
    clinic = Clinic(policy=MONITORED)
    given = dosed(clinic)
    threshold = MonitoringPolicy().discharge_bp_threshold.systolic
    for kind, minutes, systolic, sedation, resolved, spo2 in steps:
        clinic.now += timedelta(minutes=minutes)
        if clinic.course.monitoring is None:
            break
        if kind == "reading":
            fields = {
                "sedation": {"score": sedation},
                "dissociation": "resolved" if resolved else "present",
                "spo2": spo2,
            }
            clinic.record(story.NURSE, chair_reading(clinic.now, systolic=systolic, **fields))
        elif kind == "tick":
            clinic.record(story.OPERATIONS, Tick())
        else:
            last = clinic.course.monitoring.last
            try:
                clinic.record(story.NURSE, discharge(clinic.now))
            except RuleViolation:
                continue
            assert clinic.now - given >= timedelta(minutes=120)
            assert last is not None and last.blood_pressure.systolic < threshold
    clinic.now = given + timedelta(hours=5)
    clinic.record(story.OPERATIONS, Tick())
    assert clinic.course.monitoring is None or "monitoring-1-escalation" in clinic.course.fired


def test_a_short_policy_and_a_time_before_the_dose_still_read_as_sentences() -> None:
    short = MonitoringPolicy(minimum_observation={"iv_infusion": timedelta(seconds=20)})
    refused = discharge_refusal(session(reading(0)), short, at(-0.5), ride_handoff=True)
    assert refused is not None and refused.message == (
        "The patient has been observed for 0 minutes after the dose; 20 seconds are needed by this route: "
        "1 minute left."
    )
