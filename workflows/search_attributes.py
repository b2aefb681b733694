"""The search attributes operations staff filter on in the Temporal UI (opaque values only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate, SearchAttributeValue

from course.view import CourseView

COURSE_PHASE = SearchAttributeKey.for_keyword("CoursePhase")
AWAITING_STEPS = SearchAttributeKey.for_keyword_list("AwaitingSteps")
CLINICIAN_ID = SearchAttributeKey.for_keyword("ClinicianId")
THERAPIST_ID = SearchAttributeKey.for_keyword("TherapistId")
NEXT_DUE_AT = SearchAttributeKey.for_datetime("NextDueAt")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
ON_HOLD = SearchAttributeKey.for_bool("OnHold")
NEEDS_CLINICAL_REVIEW = SearchAttributeKey.for_bool("NeedsClinicalReview")
DOSING_SESSIONS_COMPLETED = SearchAttributeKey.for_int("DosingSessionsCompleted")
INSURANCE_STATUS = SearchAttributeKey.for_keyword("InsuranceStatus")
# Set while the course cannot record something it decided on its own: the reason code.
NEEDS_ATTENTION = SearchAttributeKey.for_keyword("NeedsAttention")
# Set while a patient is in the chair after a dose (course/phases/monitoring.py): when they may
# leave. Its presence is "in monitoring": a fourth Bool (InMonitoring) would exceed the three a
# namespace of the dev server (SQLite visibility) can hold, and the dev server would not start.
DISCHARGE_DUE_AT = SearchAttributeKey.for_datetime("DischargeDueAt")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    COURSE_PHASE,
    AWAITING_STEPS,
    CLINICIAN_ID,
    THERAPIST_ID,
    NEXT_DUE_AT,
    OVERDUE,
    ON_HOLD,
    NEEDS_CLINICAL_REVIEW,
    DOSING_SESSIONS_COMPLETED,
    INSURANCE_STATUS,
    NEEDS_ATTENTION,
    DISCHARGE_DUE_AT,
)

# Names the `temporal` CLI uses for each indexed value type.
CLI_TYPES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "DATETIME": "Datetime",
    "BOOL": "Bool",
    "INT": "Int",
    "TEXT": "Text",
    "FLOAT": "Double",
}


def cli_definitions() -> list[tuple[str, str]]:
    return [(key.name, CLI_TYPES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]) for key in ALL]


IndexedValues = dict[str, SearchAttributeValue | None]


def values_for(course: CourseView, next_due_at: datetime | None) -> IndexedValues:
    """What each attribute should say about a course; None clears it. Codes and opaque ids only.

    `next_due_at` is when the course next asks something of staff (course/timing.py
    `next_for_staff`); runs recorded before that change published the view's `next_due`."""
    return {
        COURSE_PHASE.name: course.phase.value,
        AWAITING_STEPS.name: list(course.awaiting),
        CLINICIAN_ID.name: course.clinician_id,
        THERAPIST_ID.name: course.therapist_id,
        NEXT_DUE_AT.name: next_due_at,
        OVERDUE.name: course.flags.overdue,
        ON_HOLD.name: course.flags.on_hold,
        NEEDS_CLINICAL_REVIEW.name: course.flags.needs_clinical_review or course.flags.needs_review,
        DOSING_SESSIONS_COMPLETED.name: course.dosing_sessions.completed,
        INSURANCE_STATUS.name: course.insurance,
        NEEDS_ATTENTION.name: course.attention,
        DISCHARGE_DUE_AT.name: course.in_monitoring.discharge_from if course.in_monitoring else None,
    }


def changes(before: IndexedValues, after: IndexedValues) -> list[SearchAttributeUpdate[Any]]:
    """Only what moved: an upsert is a history event, so unchanged values are not re-sent."""
    updates: list[SearchAttributeUpdate[Any]] = []
    for key in ALL:
        if key.name in before and before[key.name] == after[key.name]:
            continue
        value = after[key.name]
        updates.append(key.value_unset() if value is None or value == [] else key.value_set(value))
    return updates
