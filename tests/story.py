"""A clinic's ordinary course, step by step: the payloads every tier of tests records."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from course.commands import (
    Actor,
    BloodPressure,
    CheckIn,
    Condition,
    MaintenanceKind,
    Modality,
    PatientResponse,
    RecordAssessment,
    RecordConsent,
    RecordDischarge,
    RecordDosingPlan,
    RecordDosingSession,
    RecordFinancialClearance,
    RecordIntegrationSession,
    RecordIntentions,
    RecordMaintenancePlan,
    RecordMaintenanceSession,
    RecordMonitoringReading,
    RecordOrientation,
    RecordSupportPerson,
    Role,
    ScheduleSession,
    Vitals,
)
from course.policy import CoursePolicy
from workflows.inputs import OpenCourse

PRESCRIBER = Actor(id="dr-ames", role=Role.PRESCRIBER)
NURSE = Actor(id="rn-bell", role=Role.NURSE)
THERAPIST = Actor(id="th-cole", role=Role.THERAPIST)
OPERATIONS = Actor(id="ops-dunn", role=Role.OPERATIONS)

CALM = Vitals(systolic=124, diastolic=80, heart_rate=70)
HIGH = Vitals(systolic=170, diastolic=104, heart_rate=96)


def opening(
    course_id: UUID | None = None,
    *,
    policy: CoursePolicy | None = None,
    self_pay: bool = True,
    patient_id: str = "pt-0001",
) -> OpenCourse:
    return OpenCourse(
        course_id=course_id or uuid4(),
        patient_id=patient_id,
        clinician_id=PRESCRIBER.id,
        therapist_id=THERAPIST.id,
        condition=Condition.GAD,
        planned_sessions=3,
        self_pay=self_pay,
        policy=policy or CoursePolicy(),
        opened_by=OPERATIONS,
    )


def assessment(**changes: object) -> RecordAssessment:
    fields: dict[str, object] = {
        "blood_pressure": BloodPressure(systolic=128, diastolic=82),
        "heart_rate": 72,
        "contraindications": [],
        "condition": Condition.GAD,
        "gad7": 15,
    }
    return RecordAssessment.model_validate({**fields, **changes})


def preparation(now: datetime, planned_sessions: int = 3) -> list[tuple[Actor, object]]:
    return [
        (OPERATIONS, RecordFinancialClearance(self_pay=True, estimated_cost_acknowledged=True)),
        (THERAPIST, RecordIntentions(goals="Fewer panic episodes at work")),
        (NURSE, RecordConsent(form_version="2026-01", signed_at=now)),
        (OPERATIONS, RecordSupportPerson(name="Sam Support", relationship="spouse", phone="555-0100")),
        (
            PRESCRIBER,
            RecordDosingPlan(
                route="iv_infusion",
                planned_sessions=planned_sessions,
                starting_dose_mg_per_kg=0.5,
                max_dose_mg_per_kg=1.0,
            ),
        ),
        (NURSE, RecordOrientation(topics=["what_to_expect", "side_effects", "ride_home"])),
    ]


def schedule(n: int, at: datetime) -> ScheduleSession:
    return ScheduleSession(session_number=n, scheduled_at=at)


def check_in(n: int, vitals: Vitals = CALM, ride_home: bool = True) -> CheckIn:
    return CheckIn(session_number=n, vitals=vitals, ride_home_arranged=ride_home)


def dose(n: int, **changes: object) -> RecordDosingSession:
    fields: dict[str, object] = {
        "session_number": n,
        "route": "iv_infusion",
        "dose_mg_per_kg": 0.5,
        "post_vitals": Vitals(systolic=130, diastolic=84, heart_rate=76),
        "side_effects": [{"effect": "nausea", "severity": "mild"}],
        "patient_response": PatientResponse.BETTER,
        "gad7": 12 - n,
    }
    return RecordDosingSession.model_validate({**fields, **changes})


def integration(held_at: datetime, gad7: int | None = 8) -> RecordIntegrationSession:
    return RecordIntegrationSession(modality=Modality.ACT, held_at=held_at, gad7=gad7)


def maintenance_plan(
    kind: MaintenanceKind = MaintenanceKind.KETAMINE, interval_days: int | None = 90
) -> RecordMaintenancePlan:
    return RecordMaintenancePlan(kind=kind, interval_days=interval_days)


def maintenance_session(held_at: datetime, gad7: int = 6) -> RecordMaintenanceSession:
    return RecordMaintenanceSession(kind=MaintenanceKind.KETAMINE, held_at=held_at, gad7=gad7)


def soon(now: datetime, days: float = 2) -> datetime:
    return now + timedelta(days=days)


def reading(taken_at: datetime, systolic: int = 128, n: int = 1, **changes: object) -> RecordMonitoringReading:
    """A recheck in the chair after dose `n`: settled but for the systolic pressure given."""
    fields: dict[str, object] = {
        "session_number": n,
        "taken_at": taken_at,
        "blood_pressure": {"systolic": systolic, "diastolic": 84},
        "heart_rate": 80,
        "spo2": 97,
        "sedation": {"score": 5},
        "dissociation": "resolved",
    }
    return RecordMonitoringReading.model_validate(fields | changes)


def discharge(at: datetime, n: int = 1) -> RecordDischarge:
    """Session `n`'s patient leaves with their spouse, feeling better."""
    return RecordDischarge(
        session_number=n,
        discharged_at=at,
        collected_by="Sam",
        relationship="spouse",
        patient_response=PatientResponse.BETTER,
    )
