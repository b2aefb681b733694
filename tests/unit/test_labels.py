"""Every choice a clinician picks has words, and every field of a step has a title in words."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import pytest

from api.forms import form_fields
from course.access import BreakGlassReason
from course.commands import (
    STEPS,
    Condition,
    Contraindication,
    Dissociation,
    MaintenanceKind,
    Modality,
    PatientResponse,
    RecordDosingSession,
    ReviewDecision,
    Route,
    SedationScale,
    Severity,
    SideEffectKind,
)
from course.labels import CHOICES, choice_words, member_words

PICKED: list[type[StrEnum]] = [
    Route,
    Condition,
    Contraindication,
    SideEffectKind,
    Severity,
    PatientResponse,
    Modality,
    MaintenanceKind,
    ReviewDecision,
    BreakGlassReason,
    SedationScale,
    Dissociation,
]
CODE_LIKE = re.compile(r"_|^[a-z]|[a-z][A-Z]")  # iv_infusion, nausea, SideEffectKind


@pytest.mark.parametrize("enum", PICKED, ids=lambda e: e.__name__)
def test_every_choice_a_clinician_picks_has_words_of_its_own(enum: type[StrEnum]) -> None:
    assert set(CHOICES[enum.__name__]) == {m.value for m in enum}, "a member without words, or words for none"
    for member in enum:
        words = member_words(member)
        assert words.strip() and not CODE_LIKE.search(words), (member, words)


def test_the_words_a_nurse_reads_for_routes_and_therapies() -> None:
    assert choice_words("iv_infusion", "Route") == "IV infusion"
    assert choice_words("im_injection", "Route") == "Intramuscular injection"
    assert choice_words("act", "Modality") == "ACT (acceptance and commitment therapy)"
    assert choice_words("ifs", "Modality") == "IFS (internal family systems)"
    # The same code in two enums reads as its own enum says.
    assert choice_words("other", "SideEffectKind") != choice_words("other", "Condition")
    assert choice_words("ketamine") == "Ketamine maintenance sessions"  # an inline choice, no enum named
    assert choice_words("not_a_code") == "not a code"


def _titles(schema: dict[str, Any], defs: dict[str, Any], where: str) -> list[tuple[str, str | None]]:
    """(field path, the title a reader sees) for every field, following $ref as a reader does."""
    found = []
    for name, prop in schema.get("properties", {}).items():
        if "const" in prop:
            continue  # the step discriminator, never shown
        target = prop
        for branch in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
            if "$ref" in branch:
                target = defs[branch["$ref"].rsplit("/", 1)[-1]]
        found.append((f"{where}{name}", prop.get("title") or target.get("title")))
        if target.get("type") == "object":
            found += _titles(target, defs, f"{where}{name}.")
    return found


@pytest.mark.parametrize("step", sorted(STEPS))
def test_every_field_of_every_step_has_a_title_in_words(step: str) -> None:
    schema = STEPS[step].model_json_schema()
    for path, title in _titles(schema, schema.get("$defs", {}), ""):
        assert title and not re.search(r"[a-z][A-Z]", title) and "_" not in title, (step, path, title)
        # Pydantic's automatic title would be the name capitalised: an explicit one says more, or
        # is the same single word.
        name = path.rsplit(".", 1)[-1]
        assert title != name.replace("_", " ").title() or " " not in title, (step, path, title)


def test_the_dosing_session_schema_says_vitals_before_and_after_with_units() -> None:
    schema = RecordDosingSession.model_json_schema()
    properties = schema["properties"]
    assert properties["post_vitals"]["title"] == "Post-dose vitals"
    assert properties["dose_mg_per_kg"]["title"] == "Dose" and "mg/kg" in properties["dose_mg_per_kg"]["description"]
    assert properties["patient_response"]["title"] == "Patient response"
    assert "0 to 21" in properties["gad7"]["description"]
    vitals = schema["$defs"]["Vitals"]["properties"]
    assert "mmHg" in vitals["systolic"]["description"] and "minute" in vitals["heart_rate"]["description"]
    check_in = STEPS["check-in"].model_json_schema()["properties"]
    assert check_in["vitals"]["title"] == "Pre-dose vitals"
    assert (
        "printed on the signed consent"
        in STEPS["consent"].model_json_schema()["properties"]["form_version"]["description"]
    )


def test_a_form_shows_words_for_labels_and_choices_and_submits_codes() -> None:
    fields = {f.name: f for f in form_fields(RecordDosingSession)}
    assert fields["route"].label == "Route" and fields["route"].options[0] == "iv_infusion"
    assert fields["route"].option_words["iv_infusion"] == "IV infusion"
    assert fields["dose_mg_per_kg"].label == "Dose" and "mg/kg" in str(fields["dose_mg_per_kg"].description)
    assert fields["post_vitals.systolic"].group == "Post-dose vitals"
    assert fields["side_effects.1.effect"].label == "Side effect"
    assert fields["side_effects.1.effect"].group == "Side effect 2"
    severity = fields["side_effects.0.severity"].option_words
    assert severity == {"mild": "Mild", "moderate": "Moderate", "severe": "Severe"}
    assert fields["patient_response"].label == "Patient response"
    maintenance = {f.name: f for f in form_fields(STEPS["maintenance-session"])}
    assert maintenance["kind"].option_words["therapy_only"] == "Therapy only"
    assessment = {f.name: f for f in form_fields(STEPS["assessment"])}
    assert assessment["contraindications"].option_words["hepatic_impairment"] == "Hepatic impairment"
