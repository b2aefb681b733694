"""Every sentence a clinician reads about a payload that is not right, word for word."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from course.commands import STEPS, CheckIn, RecordDosingSession, RecordIntegrationSession, ScheduleSession
from course.wording import field_in_words, json_in_words, problems_in_words

VITALS = {"systolic": 124, "diastolic": 80, "heart_rate": 70}


def words(model: type[BaseModel], payload: Any, *, echo: bool = True) -> dict[str, str]:
    with pytest.raises(ValidationError) as invalid:
        if isinstance(payload, str):
            model.model_validate_json(payload, extra="forbid")
        else:
            model.model_validate(payload, extra="forbid")
    return problems_in_words(invalid.value.errors(), model, echo=echo)


def test_an_implausible_reading_is_named_with_its_unit_and_the_plausible_range() -> None:
    problems = words(CheckIn, {"session_number": 1, "ride_home_arranged": True, "vitals": {**VITALS, "systolic": 400}})
    assert problems == {
        "vitals.systolic": "400 mmHg is not a plausible systolic blood pressure (pre-dose vitals): it must be at "
        "most 300 mmHg."
    }


def test_without_echo_the_reading_is_not_repeated() -> None:
    problems = words(CheckIn, {"session_number": 1, "ride_home_arranged": True, "vitals": {**VITALS, "heart_rate": 5}},
                     echo=False)  # fmt: skip
    assert problems == {
        "vitals.heart_rate": "This heart rate (pre-dose vitals) is not plausible: it must be at least 20 beats per "
        "minute."
    }
    assert "5" not in problems["vitals.heart_rate"].replace("250", "")


def test_post_dose_vitals_and_the_dose_are_named_as_a_nurse_says_them() -> None:
    payload = {
        "session_number": 1,
        "route": "iv_infusion",
        "dose_mg_per_kg": 9,
        "post_vitals": {**VITALS, "diastolic": 250},
        "patient_response": "better",
    }
    problems = words(RecordDosingSession, payload)
    assert problems["dose_mg_per_kg"] == "9 mg/kg is not a plausible dose: it must be at most 5 mg/kg."
    assert problems["post_vitals.diastolic"] == (
        "250 mmHg is not a plausible diastolic blood pressure (post-dose vitals): it must be at most 200 mmHg."
    )


def test_missing_wrong_type_choice_and_unknown_fields() -> None:
    problems = words(CheckIn, {"session_number": "one", "vitals": VITALS, "spo2": 98})
    assert problems == {
        "session_number": "Session number must be a whole number.",
        "ride_home_arranged": "Ride home arranged is missing.",
        "spo2": "'spo2' is not a field of this step (a typo?); `course record --schema STEP` lists them.",
    }
    nested = words(CheckIn, {"session_number": 1, "ride_home_arranged": True, "vitals": {**VITALS, "spo2": 98}})
    assert nested == {
        "vitals.spo2": "'spo2' is not a field of pre-dose vitals (a typo?); `course record --schema STEP` lists them."
    }
    route = words(RecordDosingSession, {"route": "sniffed"})["route"]
    assert route == "Route must be one of: iv_infusion, im_injection, intranasal or oral_lozenge."


def test_times_say_what_they_need() -> None:
    assert words(ScheduleSession, {"session_number": 1, "scheduled_at": "tomorrow"}) == {
        "scheduled_at": "Scheduled time needs a date and a time with its zone, like 2026-12-03T15:00:00Z."
    }
    assert words(RecordIntegrationSession, {"modality": "act", "held_at": "2026-12-03T10:00:00"}) == {
        "held_at": "Time the session was held needs its zone: add Z for UTC or the clinic's offset, like +01:00."
    }


def test_a_rule_inside_a_model_reads_as_its_own_sentence() -> None:
    problems = words(CheckIn, {"session_number": 1, "ride_home_arranged": True, "vitals": {**VITALS, "diastolic": 130}})
    assert problems == {"vitals": "Pre-dose vitals: diastolic pressure must be lower than systolic."}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"goals": x}', "a value is missing or is not JSON (text needs double quotes) (line 1, column 11)"),
        ('{goals: "x"}', "a key must be in double quotes (line 1, column 2)"),
        ('{"goals": "x"', "it ends before it is complete (a missing } or ]) (line 1, column 13)"),
    ],
)
def test_json_that_is_not_json_says_where_and_what(text: str, expected: str) -> None:
    problems = words(STEPS["intentions"], text)
    assert problems == {"payload": f"The payload is not valid JSON: {expected}."}


def test_fields_in_words_count_rows_from_one_and_fall_back_to_the_name() -> None:
    assert field_in_words(["side_effects", 1, "severity"], RecordDosingSession) == "severity (side effect 2)"
    assert field_in_words(["gad7"]) == "GAD-7 score"
    assert field_in_words(["blood_pressure", "systolic"]) == "systolic blood pressure (blood pressure)"
    assert field_in_words([]) == "the payload"
    assert json_in_words("garbage") == "The payload is not valid JSON: it is not valid JSON."
