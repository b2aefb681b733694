"""Every code the FHIR export writes, with its display and where it comes from: nothing else defines one.

A code is a (system, code, display) triple plus `source`, the publication that defines it (checked
against /work/shared/CLINICAL-REFERENCE.md and the FHIR specification's terminology pages). Where
no standard code is certain the clinic's own code system is used and says so (`CLINIC_*`): an EHR
can map it, and nothing pretends to be a standard code it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course.commands import Condition, Dissociation, Modality, Role, Route, Severity, SideEffectKind

# --- code systems (FHIR canonical URIs) ------------------------------------------------------------
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
BENEFIT_TYPE = "http://terminology.hl7.org/CodeSystem/benefit-type"
BENEFIT_NETWORK = "http://terminology.hl7.org/CodeSystem/benefit-network"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# The clinic's own namespaces: identifiers it issues and codes no standard terminology carries.
CLINIC = "urn:treatment-courses"
PATIENT_ID = f"{CLINIC}:patient-id"  # the pseudonymous patient reference given at opening
COURSE_ID = f"{CLINIC}:course-id"
STAFF_ID = f"{CLINIC}:staff-id"
PAYER_ID = f"{CLINIC}:payer-id"
UPDATE_ID = f"{CLINIC}:update-id"  # a recorded step's identity: its request (Temporal update) id
EVENT_ID = f"{CLINIC}:event-id"
CONSENT_FORM = f"{CLINIC}:consent-form"  # + ":" + the form version printed on the signed form
CLINIC_ROLE = f"{CLINIC}:CodeSystem/staff-role"
CLINIC_STEP = f"{CLINIC}:CodeSystem/step"
CLINIC_MODALITY = f"{CLINIC}:CodeSystem/therapy-modality"
CLINIC_GAD7_BAND = f"{CLINIC}:CodeSystem/gad7-severity"
CLINIC_REASON = f"{CLINIC}:CodeSystem/reason"
CLINIC_SESSION = f"{CLINIC}:CodeSystem/session-kind"
CLINIC_BENEFIT = f"{CLINIC}:CodeSystem/benefit-type"
CLINIC_OBSERVATION = f"{CLINIC}:CodeSystem/observation"
CLINIC_SIDE_EFFECT = f"{CLINIC}:CodeSystem/side-effect"


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str
    source: str

    def coding(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "display": self.display}

    def concept(self, *more: Code, text: str | None = None) -> dict[str, Any]:
        """A CodeableConcept of this code (and any equivalents in other systems)."""
        concept: dict[str, Any] = {"coding": [c.coding() for c in (self, *more)]}
        if text is not None:
            concept["text"] = text
        return concept


_LOINC_SRC = "LOINC (loinc.org); FHIR R4 vital-signs profile"
_SCT_SRC = "SNOMED CT International (snomed.info/sct)"
_ICD_SRC = "ICD-10-CM (CDC/CMS, FY2026 tabular list)"
_THO = "HL7 Terminology (terminology.hl7.org)"
_CLINIC_SRC = "the clinic's own code system (no standard code is certain)"

# --- LOINC: observations -------------------------------------------------------------------------
VITAL_SIGNS_PANEL = Code(
    LOINC, "85353-1", "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel", _LOINC_SRC
)
BLOOD_PRESSURE_PANEL = Code(LOINC, "85354-9", "Blood pressure panel with all children optional", _LOINC_SRC)
SYSTOLIC = Code(LOINC, "8480-6", "Systolic blood pressure", _LOINC_SRC)
DIASTOLIC = Code(LOINC, "8462-4", "Diastolic blood pressure", _LOINC_SRC)
HEART_RATE = Code(LOINC, "8867-4", "Heart rate", _LOINC_SRC)
OXYGEN_SATURATION = Code(LOINC, "2708-6", "Oxygen saturation in Arterial blood", _LOINC_SRC)
OXYGEN_SATURATION_PULSE_OXIMETRY = Code(
    LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", _LOINC_SRC
)
GAD7_TOTAL = Code(LOINC, "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score", "LOINC (loinc.org)")
CONSENT_DOCUMENT = Code(LOINC, "59284-0", "Patient Consent", "LOINC (loinc.org); FHIR R4 consent-category value set")

# --- Observation categories ----------------------------------------------------------------------
VITAL_SIGNS = Code(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs", _THO)
SURVEY = Code(OBSERVATION_CATEGORY, "survey", "Survey", _THO)
EXAM = Code(OBSERVATION_CATEGORY, "exam", "Exam", _THO)

# --- GAD-7 severity bands (Spitzer et al. 2006: 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe)
_BAND_SRC = "the clinic's code system for the GAD-7 bands of Spitzer et al., Arch Intern Med 2006;166:1092"
GAD7_BANDS: tuple[tuple[int, Code], ...] = (
    (4, Code(CLINIC_GAD7_BAND, "minimal", "Minimal anxiety (GAD-7 0-4)", _BAND_SRC)),
    (9, Code(CLINIC_GAD7_BAND, "mild", "Mild anxiety (GAD-7 5-9)", _BAND_SRC)),
    (14, Code(CLINIC_GAD7_BAND, "moderate", "Moderate anxiety (GAD-7 10-14)", _BAND_SRC)),
    (21, Code(CLINIC_GAD7_BAND, "severe", "Severe anxiety (GAD-7 15-21)", _BAND_SRC)),
)


def gad7_band(score: int) -> Code:
    """The severity band of a GAD-7 total (0-21)."""
    for upper, band in GAD7_BANDS:
        if score <= upper:
            return band
    raise ValueError("a GAD-7 total is 0 to 21")


# --- after the dose: sedation (its scale named), dissociation, side effects and their severity ---------
SEDATION_MOAAS = Code(
    CLINIC_OBSERVATION, "sedation-moaas", "Sedation score, Modified Observer's Assessment of Alertness/Sedation (0-5)",
    _CLINIC_SRC,
)  # fmt: skip
DISSOCIATION = Code(CLINIC_OBSERVATION, "dissociation", "Dissociation", _CLINIC_SRC)
DISSOCIATION_STATES: dict[Dissociation, Code] = {
    d: Code(CLINIC_OBSERVATION, f"dissociation-{d.value}", f"Dissociation {d.value}", _CLINIC_SRC) for d in Dissociation
}
SIDE_EFFECTS: dict[SideEffectKind, Code] = {
    kind: Code(CLINIC_SIDE_EFFECT, kind.value, kind.value.replace("_", " "), _CLINIC_SRC) for kind in SideEffectKind
}
# The severities of FHIR's condition-severity value set (SNOMED CT qualifier values).
SEVERITIES: dict[Severity, Code] = {
    Severity.MILD: Code(SNOMED, "255604002", "Mild", _SCT_SRC),
    Severity.MODERATE: Code(SNOMED, "6736007", "Moderate", _SCT_SRC),
    Severity.SEVERE: Code(SNOMED, "24484000", "Severe", _SCT_SRC),
}

# --- the drug: RxNorm ingredient, and routes in SNOMED CT -----------------------------------------
KETAMINE = Code(RXNORM, "6130", "ketamine", "RxNorm (NLM), ingredient (TTY=IN)")
ROUTES: dict[Route, Code] = {
    Route.IV_INFUSION: Code(SNOMED, "47625008", "Intravenous route", _SCT_SRC),
    Route.IM_INJECTION: Code(SNOMED, "78421000", "Intramuscular route", _SCT_SRC),
    Route.INTRANASAL: Code(SNOMED, "46713006", "Nasal route", _SCT_SRC),
    # A ketamine lozenge (troche) is held in the mouth and absorbed through the mucosa, not
    # swallowed: sublingual is the closest route the clinical reference lists.
    Route.ORAL_LOZENGE: Code(SNOMED, "37839007", "Sublingual route", _SCT_SRC),
}

# --- the condition treated: ICD-10-CM and SNOMED CT -----------------------------------------------
CONDITIONS: dict[Condition, tuple[Code, Code]] = {
    Condition.GAD: (
        Code(ICD10CM, "F41.1", "Generalized anxiety disorder", _ICD_SRC),
        Code(SNOMED, "21897009", "Generalized anxiety disorder", _SCT_SRC),
    ),
    Condition.PANIC: (
        Code(ICD10CM, "F41.0", "Panic disorder [episodic paroxysmal anxiety]", _ICD_SRC),
        Code(SNOMED, "371631005", "Panic disorder", _SCT_SRC),
    ),
    Condition.SOCIAL_ANXIETY: (
        Code(ICD10CM, "F40.10", "Social phobia, unspecified", _ICD_SRC),
        Code(SNOMED, "25501002", "Social phobia", _SCT_SRC),
    ),
    # The course records "phobia" without its type: F40.2 (specific phobias) has no unspecified
    # billable child, so the catch-all "other specified phobia" is used.
    Condition.PHOBIA: (
        Code(ICD10CM, "F40.298", "Other specified phobia", _ICD_SRC),
        Code(SNOMED, "386810004", "Phobic disorder", _SCT_SRC),
    ),
    Condition.OTHER: (
        Code(ICD10CM, "F41.9", "Anxiety disorder, unspecified", _ICD_SRC),
        Code(SNOMED, "197480006", "Anxiety disorder", _SCT_SRC),
    ),
}
CONDITION_ACTIVE = Code(CONDITION_CLINICAL, "active", "Active", _THO)
CONDITION_CONFIRMED = Code(CONDITION_VERIFICATION, "confirmed", "Confirmed", _THO)

# --- therapy: psychotherapy in SNOMED CT, the modality as the clinic names it -----------------------
PSYCHOTHERAPY = Code(SNOMED, "75516001", "Psychotherapy", _SCT_SRC)
MODALITIES: dict[Modality, Code] = {
    Modality.CBT: Code(CLINIC_MODALITY, "cbt", "Cognitive behavioral therapy", _CLINIC_SRC),
    Modality.MINDFULNESS: Code(CLINIC_MODALITY, "mindfulness", "Mindfulness-based therapy", _CLINIC_SRC),
    Modality.PSYCHODYNAMIC: Code(CLINIC_MODALITY, "psychodynamic", "Psychodynamic psychotherapy", _CLINIC_SRC),
    Modality.ACT: Code(CLINIC_MODALITY, "act", "Acceptance and commitment therapy", _CLINIC_SRC),
    Modality.IFS: Code(CLINIC_MODALITY, "ifs", "Internal family systems therapy", _CLINIC_SRC),
    Modality.SOMATIC: Code(CLINIC_MODALITY, "somatic", "Somatic therapy", _CLINIC_SRC),
}
MAINTENANCE_SESSION = Code(CLINIC_SESSION, "maintenance", "Maintenance session", _CLINIC_SRC)
DOSING_SESSION = Code(CLINIC_SESSION, "dosing", "Ketamine dosing session", _CLINIC_SRC)

# --- units (UCUM) ---------------------------------------------------------------------------------
_UCUM_SRC = "UCUM (unitsofmeasure.org)"
MG_PER_KG = Code(UCUM, "mg/kg", "mg/kg", _UCUM_SRC)
MM_HG = Code(UCUM, "mm[Hg]", "mmHg", _UCUM_SRC)
PER_MINUTE = Code(UCUM, "/min", "/min", _UCUM_SRC)
PERCENT = Code(UCUM, "%", "%", _UCUM_SRC)
SCORE = Code(UCUM, "{score}", "{score}", _UCUM_SRC)

# --- consent, coverage, provenance ----------------------------------------------------------------
CONSENT_TREATMENT = Code(CONSENT_SCOPE, "treatment", "Treatment", _THO)
BENEFIT_COPAY = Code(BENEFIT_TYPE, "copay", "Copayment per service", _THO)
BENEFIT_COPAY_PERCENT = Code(BENEFIT_TYPE, "copay-percent", "Copayment Percent per service", _THO)
BENEFIT_DEDUCTIBLE = Code(BENEFIT_TYPE, "deductible", "Deductible", _THO)
BENEFIT_OUT_OF_POCKET = Code(CLINIC_BENEFIT, "out-of-pocket-remaining", "Out-of-pocket maximum remaining", _CLINIC_SRC)
IN_NETWORK = Code(BENEFIT_NETWORK, "in", "In Network", _THO)
OUT_OF_NETWORK = Code(BENEFIT_NETWORK, "out", "Out of Network", _THO)
AUTHOR = Code(PROVENANCE_PARTICIPANT, "author", "Author", _THO)
PERFORMER = Code(PROVENANCE_PARTICIPANT, "performer", "Performer", _THO)

ROLES: dict[Role, Code] = {
    role: Code(CLINIC_ROLE, role.value, role.value.replace("_", " "), _CLINIC_SRC) for role in Role
}

# The support person's relationship, where it is one of the v3 RoleCode family codes; else text.
_V3 = "HL7 v3 RoleCode (terminology.hl7.org)"
RELATIONSHIPS: dict[str, Code] = {
    "spouse": Code(V3_ROLE_CODE, "SPS", "spouse", _V3),
    "husband": Code(V3_ROLE_CODE, "HUSB", "husband", _V3),
    "wife": Code(V3_ROLE_CODE, "WIFE", "wife", _V3),
    "partner": Code(V3_ROLE_CODE, "DOMPART", "domestic partner", _V3),
    "parent": Code(V3_ROLE_CODE, "PRN", "parent", _V3),
    "mother": Code(V3_ROLE_CODE, "MTH", "mother", _V3),
    "father": Code(V3_ROLE_CODE, "FTH", "father", _V3),
    "sister": Code(V3_ROLE_CODE, "SIS", "sister", _V3),
    "brother": Code(V3_ROLE_CODE, "BRO", "brother", _V3),
    "sibling": Code(V3_ROLE_CODE, "SIB", "sibling", _V3),
    "child": Code(V3_ROLE_CODE, "CHILD", "child", _V3),
    "son": Code(V3_ROLE_CODE, "SON", "natural son", _V3),
    "daughter": Code(V3_ROLE_CODE, "DAU", "natural daughter", _V3),
    "friend": Code(V3_ROLE_CODE, "FRND", "unrelated friend", _V3),
    "neighbor": Code(V3_ROLE_CODE, "NBOR", "neighbor", _V3),
}


def step_code(step: str) -> Code:
    """A course step (`check-in`, `integration-session`...) as the clinic's code."""
    return Code(CLINIC_STEP, step, step.replace("-", " "), _CLINIC_SRC)


def reason_code(reason: str) -> Code:
    """A reason code the course recorded (`bp_above_threshold`): a code, never prose."""
    return Code(CLINIC_REASON, reason, reason.replace("_", " "), _CLINIC_SRC)
