"""Forms from a step's JSON schema, and the payload a filled form stands for."""

from __future__ import annotations

from api.forms import form_fields, payload_from_form
from course.commands import STEPS, RecordAssessment, RecordDosingSession


def test_every_step_gets_a_form_and_nested_fields_get_dotted_names() -> None:
    for model in STEPS.values():
        assert all(f.name != "step" for f in form_fields(model))
    fields = {f.name: f for f in form_fields(RecordAssessment)}
    assert fields["blood_pressure.systolic"].kind == "integer" and fields["blood_pressure.systolic"].required
    assert fields["contraindications"].kind == "choices" and "pregnancy" in fields["contraindications"].options
    assert fields["condition"].kind == "select"
    assert fields["relative_contraindication_rationale"].kind == "textarea"
    assert not fields["relative_contraindication_rationale"].required


def test_a_dosing_session_form_becomes_the_payload_course_record_takes() -> None:
    fields = form_fields(RecordDosingSession)
    form = {
        "session_number": ["1"],
        "route": ["iv_infusion"],
        "dose_mg_per_kg": ["0.5"],
        "post_vitals.systolic": ["130"],
        "post_vitals.diastolic": ["84"],
        "post_vitals.heart_rate": ["76"],
        "side_effects.0.effect": ["nausea"],
        "side_effects.0.severity": ["mild"],
        "side_effects.1.effect": [""],  # an untouched row is no side effect
        "patient_response": ["better"],
        "gad7": [""],  # left empty: not measured
    }
    session = RecordDosingSession.model_validate(payload_from_form(fields, form, "UTC"))
    assert session.post_vitals.diastolic == 84 and session.gad7 is None
    assert [(s.effect.value, s.severity.value) for s in session.side_effects] == [("nausea", "mild")]


def test_local_times_are_the_clinics_time_zone_and_lists_are_one_per_line() -> None:
    consent = payload_from_form(form_fields(STEPS["consent"]), {"signed_at": ["2026-01-05T09:30"]}, "Europe/Paris")
    assert consent["signed_at"] == "2026-01-05T09:30:00+01:00"
    orientation = payload_from_form(
        form_fields(STEPS["orientation"]), {"topics": ["ride_home\n\n side_effects "]}, "UTC"
    )
    assert orientation == {"topics": ["ride_home", "side_effects"]}
    clearance = payload_from_form(form_fields(STEPS["financial-clearance"]), {"self_pay": ["true"]}, "UTC")
    assert clearance == {"self_pay": True, "estimated_cost_acknowledged": False}
