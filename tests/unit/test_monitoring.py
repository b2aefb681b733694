"""After the dose: each reason a discharge is refused, each clock's due time, when the prescriber is called."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.commands import BloodPressure, SideEffect
from course.phases.monitoring import (
    Dissociation,
    MonitoredSession,
    Reading,
    discharge_refusal,
    escalation_at,
    late_at,
    recheck_due,
    review_reasons,
)
from course.policy import BloodPressureThreshold, MonitoringPolicy

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
    return MonitoredSession(session_number=1, route=route, given_at=GIVEN, readings=readings)


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
