"""Vital signs and GAD-7 totals as FHIR Observations (the R4 vital-signs profile's LOINC codes).

One set of vital signs is one panel (85353-1) whose members are the blood pressure panel (85354-9,
systolic 8480-6 and diastolic 8462-4 components), heart rate (8867-4) and, where taken, SpO2
(2708-6 with 59408-5, by pulse oximetry) and, in the chair, the sedation score (its scale named),
dissociation and each side effect with its severity (SNOMED CT, as FHIR's condition-severity):
so "one Observation per reading" counts panels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from course.commands import BloodPressure, Dissociation, SideEffect
from interop import codes
from interop.shapes import Json, Origin, instant, quantity, ref
from interop.steps import resource_id


def _observation(origin: Origin, oid: str, code: Json, category: codes.Code) -> Json:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [category.concept()],
        "code": code,
        "subject": origin.patient,
        "effectiveDateTime": instant(origin.at),
        "performer": [origin.performer],
    }


def vital_signs(
    origin: Origin,
    pressure: BloodPressure,
    heart_rate: int,
    *,
    spo2: int | None = None,
    chair: ChairSigns | None = None,
    part_of: Json | None = None,
) -> list[Json]:
    """The panel first, then its members; `part_of` the administration they followed."""

    def member(name: str, code: Json) -> Json:
        oid = resource_id(origin.course_id, "vitals", origin.event_id, name)
        return _observation(origin, oid, code, codes.VITAL_SIGNS)

    bp = member("blood-pressure", codes.BLOOD_PRESSURE_PANEL.concept())
    bp["component"] = [
        {"code": codes.SYSTOLIC.concept(), "valueQuantity": quantity(pressure.systolic, codes.MM_HG)},
        {"code": codes.DIASTOLIC.concept(), "valueQuantity": quantity(pressure.diastolic, codes.MM_HG)},
    ]
    hr = member("heart-rate", codes.HEART_RATE.concept())
    hr["valueQuantity"] = quantity(heart_rate, codes.PER_MINUTE)
    members = [bp, hr]
    if spo2 is not None:
        ox = member("spo2", codes.OXYGEN_SATURATION.concept(codes.OXYGEN_SATURATION_PULSE_OXIMETRY))
        ox["valueQuantity"] = quantity(spo2, codes.PERCENT)
        members.append(ox)
    if chair is not None:
        members += _chair_signs(chair, member)
    panel_id = resource_id(origin.course_id, "vitals", origin.event_id)
    panel = _observation(origin, panel_id, codes.VITAL_SIGNS_PANEL.concept(), codes.VITAL_SIGNS)
    panel["hasMember"] = [ref(m) for m in members]
    observations = [panel, *members]
    if part_of is not None:
        for observation in observations:
            observation["partOf"] = [ref(part_of)]
    return observations


@dataclass(frozen=True)
class ChairSigns:
    """What a reading in the chair adds to the vital signs: sedation, dissociation, side effects."""

    sedation_score: int | None = None
    dissociation: Dissociation | None = None
    side_effects: tuple[SideEffect, ...] = ()


def _chair_signs(signs: ChairSigns, member: Callable[[str, Json], Json]) -> list[Json]:
    found: list[Json] = []
    if signs.sedation_score is not None:
        sedation = member("sedation", codes.SEDATION_MOAAS.concept())
        sedation["valueInteger"] = signs.sedation_score
        found.append(sedation)
    if signs.dissociation is not None:
        dissociation = member("dissociation", codes.DISSOCIATION.concept())
        dissociation["valueCodeableConcept"] = codes.DISSOCIATION_STATES[signs.dissociation].concept()
        found.append(dissociation)
    for index, effect in enumerate(signs.side_effects):
        observed = member(f"side-effect-{index}", codes.SIDE_EFFECTS[effect.effect].concept())
        observed["valueCodeableConcept"] = codes.SEVERITIES[effect.severity].concept()
        found.append(observed)
    for observation in found:
        observation["category"] = [codes.EXAM.concept()]
    return found


def gad7_total(origin: Origin, score: int, part_of: Json | None = None) -> Json:
    """The GAD-7 total (70274-6) with its severity band as the interpretation."""
    oid = resource_id(origin.course_id, "gad7", origin.event_id)
    observation = _observation(origin, oid, codes.GAD7_TOTAL.concept(), codes.SURVEY)
    observation["valueInteger"] = score
    observation["interpretation"] = [codes.gad7_band(score).concept()]
    if part_of is not None:
        observation["partOf"] = [ref(part_of)]
    return observation
