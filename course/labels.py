"""The words a clinician reads for each choice she picks; the code stays what is stored and sent.

A form offers `iv_infusion` as "IV infusion" and submits `iv_infusion`: the payload, its signature
and every event keep the code, so words can be improved here without touching a stored fact.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from course.access import BreakGlassReason
from course.commands import (
    Condition,
    Contraindication,
    Dissociation,
    MaintenanceKind,
    Modality,
    PatientResponse,
    ReviewDecision,
    Route,
    SedationScale,
    Severity,
    SideEffectKind,
)

ROUTE: Mapping[Route, str] = {
    Route.IV_INFUSION: "IV infusion",
    Route.IM_INJECTION: "Intramuscular injection",
    Route.INTRANASAL: "Intranasal",
    Route.ORAL_LOZENGE: "Oral lozenge",
}
CONDITION: Mapping[Condition, str] = {
    Condition.GAD: "Generalised anxiety disorder (GAD)",
    Condition.PANIC: "Panic disorder",
    Condition.SOCIAL_ANXIETY: "Social anxiety disorder",
    Condition.PHOBIA: "Specific phobia",
    Condition.OTHER: "Other anxiety condition",
}
CONTRAINDICATION: Mapping[Contraindication, str] = {
    Contraindication.PSYCHOTIC_DISORDER: "Psychotic disorder",
    Contraindication.UNCONTROLLED_HYPERTENSION: "Uncontrolled hypertension",
    Contraindication.PREGNANCY: "Pregnancy",
    Contraindication.SUBSTANCE_USE_DISORDER: "Substance use disorder",
    Contraindication.CARDIOVASCULAR_DISEASE: "Cardiovascular disease",
    Contraindication.HEPATIC_IMPAIRMENT: "Hepatic impairment",
}
SIDE_EFFECT: Mapping[SideEffectKind, str] = {
    SideEffectKind.DISSOCIATION: "Dissociation",
    SideEffectKind.DISORIENTATION: "Disorientation",
    SideEffectKind.DIZZINESS: "Dizziness",
    SideEffectKind.NAUSEA: "Nausea",
    SideEffectKind.ELEVATED_BLOOD_PRESSURE: "Elevated blood pressure",
    SideEffectKind.OTHER: "Other side effect",
}
SEVERITY: Mapping[Severity, str] = {
    Severity.MILD: "Mild",
    Severity.MODERATE: "Moderate",
    Severity.SEVERE: "Severe",
}
PATIENT_RESPONSE: Mapping[PatientResponse, str] = {
    PatientResponse.BETTER: "Better than before",
    PatientResponse.SAME: "About the same",
    PatientResponse.WORSE: "Worse than before",
}
MODALITY: Mapping[Modality, str] = {
    Modality.CBT: "CBT (cognitive behavioural therapy)",
    Modality.MINDFULNESS: "Mindfulness-based therapy",
    Modality.PSYCHODYNAMIC: "Psychodynamic therapy",
    Modality.ACT: "ACT (acceptance and commitment therapy)",
    Modality.IFS: "IFS (internal family systems)",
    Modality.SOMATIC: "Somatic therapy",
}
MAINTENANCE: Mapping[MaintenanceKind, str] = {
    MaintenanceKind.NONE: "No maintenance",
    MaintenanceKind.KETAMINE: "Ketamine maintenance sessions",
    MaintenanceKind.THERAPY_ONLY: "Therapy only",
}
REVIEW_DECISION: Mapping[ReviewDecision, str] = {
    ReviewDecision.CONTINUE: "Continue as planned",
    ReviewDecision.ADJUST_DOSE: "Adjust the dose",
    ReviewDecision.CHANGE_ROUTE: "Change the route",
    ReviewDecision.END_DOSING: "End the dosing series",
    ReviewDecision.CLOSE_COURSE: "Close the course",
}
BREAK_GLASS: Mapping[BreakGlassReason, str] = {
    BreakGlassReason.EMERGENCY: "Emergency",
    BreakGlassReason.COVERING_COLLEAGUE: "Covering for a colleague",
    BreakGlassReason.PATIENT_REQUEST: "The patient asked",
}

SEDATION_SCALE: Mapping[SedationScale, str] = {
    SedationScale.MOAAS: "MOAA/S (Modified Observer's Assessment of Alertness/Sedation)",
}

DISSOCIATION: Mapping[Dissociation, str] = {
    Dissociation.PRESENT: "Still present",
    Dissociation.RESOLVED: "Resolved",
}

# Keyed by the enum's name, which is also its name in a JSON schema's `$defs`.
CHOICES: Mapping[str, Mapping[str, str]] = {
    enum.__name__: {member.value: words for member, words in table.items()}
    for enum, table in (
        (Route, ROUTE),
        (Condition, CONDITION),
        (Contraindication, CONTRAINDICATION),
        (SideEffectKind, SIDE_EFFECT),
        (Severity, SEVERITY),
        (PatientResponse, PATIENT_RESPONSE),
        (Modality, MODALITY),
        (MaintenanceKind, MAINTENANCE),
        (ReviewDecision, REVIEW_DECISION),
        (BreakGlassReason, BREAK_GLASS),
        (SedationScale, SEDATION_SCALE),
        (Dissociation, DISSOCIATION),
    )
}


def choice_words(value: str, enum_name: str | None = None) -> str:
    """The words for a code: from its own enum when known, else from any enum that has the code
    (an inline choice such as the maintenance session's kind), else the code with spaces."""
    if enum_name is not None and value in CHOICES.get(enum_name, {}):
        return CHOICES[enum_name][value]
    for table in CHOICES.values():
        if value in table:
            return table[value]
    return value.replace("_", " ")


def member_words(member: StrEnum) -> str:
    return choice_words(member.value, type(member).__name__)
