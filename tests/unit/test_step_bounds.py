"""What a step may hold is bounded: staff ids are ids, and every list has a length a clinic can mean."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from course.commands import Reassign

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
