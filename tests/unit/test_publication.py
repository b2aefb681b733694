"""What a clinic may publish as a course policy: every field known, every value one a real patient's
course could safely run by, and one canonical body (so one hash) however the file was written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course.commands import STEPS, Role
from course.policy import CoursePolicy, OutcomePolicy
from course.publication import PolicyRefused, canonical, check_name, for_publication, sha256_of
from course.rules import role_refusal

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "0007_policies.sql"


def _refused(document: str | dict[str, object]) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as refused:
        for_publication(document)
    return refused.value


def test_the_threats_of_a_caller_made_policy_are_each_refused_with_the_field_and_why() -> None:
    refused = _refused(
        {
            "bp_threshold": {"systolic": 300, "diastolic": 200},
            "consent_form_version": "an old form, v1",
            "day_length": 1,
            "command_window": "P7D",
            "session_reminder_lead": "PT1S",
        }
    )
    assert refused.code == "policy_out_of_bounds"
    problems = {e["field"]: e["problem"] for e in refused.errors}
    assert set(problems) == {
        "bp_threshold.systolic",
        "bp_threshold.diastolic",
        "consent_form_version",
        "day_length",
        "command_window",
        "session_reminder_lead",
    }
    assert problems["bp_threshold.systolic"] == "must be between 120 and 180 mmHg"
    assert "P1D" in problems["day_length"]
    assert "an old form" not in str(refused.errors)  # where and why, never the value sent


def test_an_unknown_or_malformed_field_is_refused_not_ignored() -> None:
    typo = _refused('{"asessment_deadline": "P9D"}')
    assert typo.code == "policy_invalid" and typo.errors[0]["field"] == "asessment_deadline"
    assert _refused("{not json").code == "policy_invalid"
    incoherent = _refused({"assessment_reminder_after": "P40D"})  # after its own deadline (P30D)
    assert incoherent.code == "policy_invalid"


def test_the_same_policy_written_two_ways_has_one_canonical_body_and_hash() -> None:
    terse = for_publication('{"session_reminder_lead": "PT24H", "bp_threshold": {"systolic": 150}}')
    spelt_out = for_publication(
        {"bp_threshold": {"diastolic": 100, "systolic": 150}, "session_reminder_lead": 86400, "day_length": "P1D"}
    )
    assert canonical(terse) == canonical(spelt_out)
    assert sha256_of(canonical(terse)) == sha256_of(canonical(spelt_out))
    assert sha256_of(canonical(terse)) != sha256_of(canonical(CoursePolicy()))
    assert CoursePolicy.model_validate_json(canonical(terse)) == terse


def test_the_default_the_migration_publishes_is_the_built_in_policy_and_within_bounds() -> None:
    sql = MIGRATION.read_text()
    literal = sql[sql.index("FROM (VALUES (") : sql.index(")) AS built_in")]
    body = "".join(re.findall(r"'([^']*)'", literal))
    # Fields added to the policy since the migration ran take their built-in value in the courses
    # that open on version 1 (each course stores the whole policy it runs by in CourseOpened).
    added_since = {"session_opens_before", "monitoring", "outcomes"}
    built_in = json.loads(canonical(CoursePolicy()))
    assert json.loads(body) == {k: v for k, v in built_in.items() if k not in added_since}
    assert for_publication(body) == CoursePolicy()


def test_a_policy_name_is_a_plain_identifier() -> None:
    assert check_name("downtown-2026") == "downtown-2026"
    for bad in ("", "Default", "a b", "x" * 65, "../etc", "-x"):
        with pytest.raises(PolicyRefused) as refused:
            check_name(bad)
        assert refused.value.code == "policy_name_invalid"


def test_a_clinic_admin_records_no_step_on_any_course() -> None:
    for step in STEPS:
        refusal = role_refusal(Role.CLINIC_ADMIN, step)
        assert refusal is not None and "clinic_admin" in refusal, step
    assert all(role_refusal(Role.OPERATIONS, step) is None for step in ("hold", "schedule-session"))


def test_a_monitoring_policy_is_held_to_clinical_bounds() -> None:
    published = for_publication({"monitoring": {}})
    assert published.monitoring is not None and published.monitoring.first_recheck_after.total_seconds() == 2400
    with pytest.raises(PolicyRefused) as refused:
        for_publication(
            {"monitoring": {"minimum_observation": {"iv_infusion": "PT5M", "snorted": "PT2H"}, "late_after": "PT2H"}}
        )
    assert refused.value.code == "policy_out_of_bounds"
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {
        "monitoring.minimum_observation.iv_infusion",
        "monitoring.minimum_observation.snorted",
        "monitoring.late_after",
    }


def test_the_outcome_thresholds_are_policy_held_to_bounds() -> None:
    """MCID 4 and remission below 5 by default (../shared/CLINICAL-REFERENCE.md); a clinic may move
    them within bounds, and may never show a cohort of fewer than 5 courses."""
    assert for_publication({}).outcomes == OutcomePolicy(mcid=4, remission_below=5, minimum_cohort=5)
    assert for_publication({"outcomes": {"mcid": 6, "minimum_cohort": 10}}).outcomes.mcid == 6
    with pytest.raises(PolicyRefused) as refused:
        for_publication({"outcomes": {"mcid": 1, "remission_below": 12, "minimum_cohort": 3}})
    assert refused.value.code == "policy_out_of_bounds"
    assert [e["field"] for e in refused.value.errors] == [
        "outcomes.mcid",
        "outcomes.remission_below",
        "outcomes.minimum_cohort",
    ]
