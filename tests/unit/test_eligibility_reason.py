"""A payer's reason reaches the course only as a code: anything else is mapped, never stored raw.

The command's `reason` is `^[a-z0-9_]+$`; a port that let anything through failed the workflow
task in a loop, with the course's lock held, when a payer answered in prose.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.eligibility import EligibilityActivities
from activities.ports import UNRECOGNISED_REASON, EligibilityRequest, EligibilityResult, reason_code
from activities.x12 import rejection_reason
from course.commands import InsuranceStatus, RecordEligibility

CODE = re.compile(r"^[a-z0-9_]+$")
REQUEST = EligibilityRequest(course_id="c-1", payer_id="acme", member_ref="M-1", self_pay=False)


def test_the_port_maps_a_reason_that_is_not_a_code() -> None:
    result = EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="Member ID not found")
    assert result.reason == "member_id_not_found"
    RecordEligibility(status=result.status, reason=result.reason)  # what the workflow then records


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("Member ID not found", "member_id_not_found"),
        ("AAA-72: invalid member", "aaa_72_invalid_member"),
        ("active_coverage", "active_coverage"),
        ("", UNRECOGNISED_REASON),
        ("¿?", UNRECOGNISED_REASON),
        ("x" * 100, "x" * 64),
    ],
)
def test_the_adapter_maps_what_a_payer_says_to_a_code(said: str, stored: str) -> None:
    assert reason_code(said) == stored


@given(st.text())
@settings(max_examples=200)
def test_any_text_becomes_a_code_the_command_accepts(said: str) -> None:
    code = reason_code(said)
    assert CODE.match(code) and len(code) <= 64
    RecordEligibility(status=InsuranceStatus.UNKNOWN, reason=code)


@given(st.text(max_size=12))
@settings(max_examples=100)
def test_every_x12_rejection_is_a_code(aaa03: str) -> None:
    EligibilityResult(status=InsuranceStatus.UNKNOWN, reason=rejection_reason(aaa03))


class _Prose:
    """A provider whose payer answers in prose: building the port's answer fails."""

    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        return EligibilityResult(status=InsuranceStatus.COVERED, reason="Coverage active (see plan)")


async def test_a_payer_answering_in_prose_reaches_the_course_as_a_code() -> None:
    result = await EligibilityActivities(_Prose()).check_eligibility(REQUEST)
    assert result == EligibilityResult(status=InsuranceStatus.COVERED, reason="coverage_active_see_plan")


def test_a_bad_reason_already_in_a_history_is_read_as_a_code_not_refused() -> None:
    """An older worker recorded the payer's prose as the activity's result; replaying that history
    must not fail the workflow task in a loop."""
    recorded = '{"status": "unknown", "reason": "AAA*72: Invalid/Missing Member ID"}'
    result = EligibilityResult.model_validate_json(recorded)
    assert result.reason == "aaa_72_invalid_missing_member_id"
