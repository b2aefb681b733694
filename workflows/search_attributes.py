"""The search attributes operations staff filter on in the Temporal UI (opaque values only)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

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

ALL = (
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
