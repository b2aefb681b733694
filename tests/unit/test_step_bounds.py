"""What a step may hold is bounded: staff ids are ids, and every list has a length a clinic can mean."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from course.commands import (
    MAX_SIDE_EFFECTS,
    STEPS,
    Contraindication,
    Reassign,
    RecordAssessment,
    RecordDosingSession,
    RecordOrientation,
)
from tests import story

FREE_TEXT = "Dr. Jane Smith (patient's sister, ring 07700 900123)"


@pytest.mark.parametrize("field", ["clinician_id", "therapist_id"])
@pytest.mark.parametrize("given", [FREE_TEXT, "dr ames", "dr-ames\n", "x" * 65])
def test_a_reassignment_to_free_text_is_refused_with_a_reason_and_without_the_text(field: str, given: str) -> None:
    # The new staff id becomes the ClinicianId / TherapistId search attribute, which is plaintext.
    with pytest.raises(ValidationError) as refused:
        Reassign(**{field: given})
    error = refused.value.errors(include_input=False)[0]
    assert error["loc"] == (field,)
    assert "staff id" in error["msg"] or "at most 64" in error["msg"], error
    assert "Jane" not in str(error)


@pytest.mark.parametrize("staff_id", ["dr-new", "th.cole", "rn_bell", "ops:dunn", "a.b@clinic.example", "x" * 64])
def test_a_reassignment_to_a_staff_id_is_accepted(staff_id: str) -> None:
    assert Reassign(clinician_id=staff_id, therapist_id=staff_id).clinician_id == staff_id


def _refused(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    return [tuple(e["loc"]) for e in refused.value.errors(include_input=False)]


def test_an_orientation_topic_is_a_heading_not_the_notes() -> None:
    assert RecordOrientation(topics=["x" * 64]).topics == ["x" * 64]
    assert _refused(RecordOrientation, {"topics": ["ride_home", "x" * 65]}) == [("topics", 1)]
    assert _refused(RecordOrientation, {"topics": ["ride_home", ""]}) == [("topics", 1)]
    assert _refused(RecordOrientation, {"topics": [f"topic {n}" for n in range(21)]}) == [("topics",)]


def test_a_dosing_session_records_a_bounded_list_of_side_effects() -> None:
    effect = {"effect": "nausea", "severity": "mild"}
    session = story.dose(1).model_dump(mode="json")
    most = RecordDosingSession.model_validate(session | {"side_effects": [effect] * MAX_SIDE_EFFECTS})
    assert len(most.side_effects) == MAX_SIDE_EFFECTS
    too_many = session | {"side_effects": [effect] * (MAX_SIDE_EFFECTS + 1)}
    assert _refused(RecordDosingSession, too_many) == [("side_effects",)]


def test_an_assessment_lists_each_contraindication_at_most_once_in_length() -> None:
    everything = [c.value for c in Contraindication]
    assessment = story.assessment().model_dump(mode="json")
    assert len(RecordAssessment.model_validate(assessment | {"contraindications": everything}).contraindications) == 6
    assert _refused(RecordAssessment, assessment | {"contraindications": [*everything, everything[0]]}) == [
        ("contraindications",)
    ]


def _lists(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for prop in schema.get("properties", {}).values():
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "array":
                found.append(branch)
    return found


@pytest.mark.parametrize("step", sorted(STEPS))
def test_every_list_a_clinician_sends_has_a_maximum_length(step: str) -> None:
    schema = STEPS[step].model_json_schema()
    for array in _lists(schema):
        assert "maxItems" in array, (step, array)
