"""A course as a FHIR Bundle: every resource valid R4B, every reference inside, counts as the stream's.

Pure: the courses are decided in memory (tests/clinic.py) and exported from their event log.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.commands import (
    AdministerDose,
    InsuranceStatus,
    PlaceHold,
    RecordDischarge,
    RecordMonitoringReading,
    ReleaseHold,
    Route,
)
from course.events import EventEnvelope
from course.policy import CoursePolicy, MonitoringPolicy
from course.view import awaiting
from interop import codes
from interop.fhir_course import course_bundle, course_resources
from interop.steps import recorded_steps
from tests import story
from tests.clinic import Clinic
from tests.unit.test_properties import play_course

MONITORED = CoursePolicy(monitoring=MonitoringPolicy())


def full_course() -> Clinic:
    """Assessment, preparation, a deferred first session, three doses each with its integration
    session, a hold and its release, the integration after the series, and maintenance."""
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=1)))
    assert clinic.record(story.NURSE, story.check_in(1, story.HIGH)) == ["DosingSessionDeferred"]
    clinic.now += timedelta(days=1)
    for n in (1, 2, 3):
        clinic.record(story.OPERATIONS, story.schedule(n, clinic.now + timedelta(hours=1)))
        clinic.dose(n)
        clinic.now += timedelta(days=1)
        clinic.record(story.THERAPIST, story.integration(clinic.now, gad7=9 - n))
        if n == 1:
            clinic.record(story.OPERATIONS, PlaceHold(reason="travel"))
            clinic.record(story.OPERATIONS, ReleaseHold())
        clinic.now += timedelta(days=2)
    clinic.record(story.THERAPIST, story.integration(clinic.now, gad7=5))
    clinic.record(story.PRESCRIBER, story.maintenance_plan())
    clinic.now += timedelta(days=85)
    clinic.record(story.NURSE, story.maintenance_session(clinic.now))
    return clinic


def monitored_course() -> Clinic:
    """A course whose policy monitors after the dose: dose given, two readings, discharge."""
    clinic = Clinic(policy=MONITORED)
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=1)))
    clinic.record(story.NURSE, story.check_in(1))
    given = clinic.now
    dose = AdministerDose(session_number=1, route=Route.IV_INFUSION, dose_mg_per_kg=0.5, given_at=given)
    clinic.record(story.NURSE, dose)
    for minutes in (45, 100):
        clinic.now = given + timedelta(minutes=minutes)
        clinic.record(story.NURSE, _reading(clinic.now))
    clinic.now = given + timedelta(minutes=125)
    discharge = RecordDischarge(
        session_number=1, discharged_at=clinic.now, collected_by="Sam Support", relationship="spouse",
        patient_response="better",  # type: ignore[arg-type]
    )  # fmt: skip
    assert clinic.record(story.NURSE, discharge) == ["PatientDischarged", "DosingSessionCompleted"]
    return clinic


def _reading(at: Any) -> RecordMonitoringReading:
    return story.reading(at, 132, heart_rate=74, side_effects=[{"effect": "nausea", "severity": "mild"}])


def exported(clinic: Clinic, *, clinical: bool = True) -> dict[str, Any]:
    """The Bundle as JSON, after checking that it and every resource in it read back as valid R4B."""
    bundle = course_bundle(str(clinic.course.course_id), clinic.log, clinical=clinical)
    document = json.loads(bundle.model_dump_json())
    Bundle.model_validate(document)
    for entry in document["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)  # invalid: raises, the test fails
    return document


def resources(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == kind]


def references(value: Any) -> list[str]:
    """Every `reference` anywhere in a resource."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def events_of(log: list[EventEnvelope], kind: str) -> list[EventEnvelope]:
    return [e for e in log if e.type == kind]


def test_a_course_through_every_phase_exports_valid_resources_whose_references_all_resolve() -> None:
    clinic = full_course()
    document = exported(clinic)
    assert document["type"] == "collection"
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in document["entry"]}
    assert len(present) == len(document["entry"]), "no resource twice"
    for entry in document["entry"]:
        assert entry["fullUrl"].endswith(f"{entry['resource']['resourceType']}/{entry['resource']['id']}")
        for reference in references(entry["resource"]):
            assert reference in present, f"{entry['resource']['resourceType']} points at {reference}"
    kinds = Counter(e["resource"]["resourceType"] for e in document["entry"])
    for kind in ("Patient", "CarePlan", "Condition", "Consent", "CoverageEligibilityResponse", "RelatedPerson"):
        assert kinds[kind] == 1, kind


def test_counts_match_the_event_stream() -> None:
    clinic = full_course()
    document = exported(clinic)
    log = clinic.log
    given = resources(document, "MedicationAdministration")
    assert len([m for m in given if m["status"] == "completed"]) == len(events_of(log, "DosingSessionCompleted")) == 3
    not_done = [m for m in given if m["status"] == "not-done"]
    assert len(not_done) == len(events_of(log, "DosingSessionDeferred")) == 1
    assert not_done[0]["statusReason"][0]["coding"][0]["code"] == "bp_above_threshold"
    assert len(resources(document, "Appointment")) == len(events_of(log, "SessionScheduled")) == 4
    procedures = resources(document, "Procedure")
    therapy = events_of(log, "IntegrationSessionRecorded") + events_of(log, "MaintenanceSessionRecorded")
    assert len(procedures) == len(therapy) == 5
    observations = resources(document, "Observation")
    panels = [o for o in observations if o["code"]["coding"][0]["code"] == codes.VITAL_SIGNS_PANEL.code]
    readings = (
        len(events_of(log, "AssessmentRecorded"))
        + len(events_of(log, "CheckedIn"))
        + len(events_of(log, "DosingSessionDeferred"))
        + len(events_of(log, "DosingSessionCompleted"))  # the vitals after each dose
    )
    assert len(panels) == readings
    gad7 = [o for o in observations if o["code"]["coding"][0]["code"] == codes.GAD7_TOTAL.code]
    scored = [e for e in log if getattr(e.event, "gad7", None) is not None]
    assert len(gad7) == len(scored)
    assert len(resources(document, "Provenance")) == len(recorded_steps(log))


def test_blood_pressure_is_the_loinc_panel_with_its_two_components_and_gad7_has_its_band() -> None:
    document = exported(full_course())
    observations = resources(document, "Observation")
    bp = next(o for o in observations if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert bp["component"][0]["valueQuantity"] == {
        "value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"
    }  # fmt: skip
    baseline = next(o for o in observations if o["code"]["coding"][0]["code"] == "70274-6")
    assert baseline["valueInteger"] == 15
    assert baseline["interpretation"][0]["coding"][0]["code"] == "severe"
    dose = next(m for m in resources(document, "MedicationAdministration") if m["status"] == "completed")
    assert dose["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130", "display": "ketamine"
    }  # fmt: skip
    assert dose["dosage"]["dose"]["code"] == "mg/kg" and dose["dosage"]["route"]["coding"][0]["code"] == "47625008"
    condition = resources(document, "Condition")[0]
    assert [c["code"] for c in condition["code"]["coding"]] == ["F41.1", "21897009"]


def test_a_monitored_dose_is_one_administration_and_each_reading_one_panel_part_of_it() -> None:
    clinic = monitored_course()
    document = exported(clinic)
    [dose] = resources(document, "MedicationAdministration")
    given = events_of(clinic.log, "DoseAdministered")[0].event
    assert datetime.fromisoformat(dose["effectiveDateTime"]) == given.given_at  # type: ignore[union-attr]
    panels = [o for o in resources(document, "Observation") if o["code"]["coding"][0]["code"] == "85353-1"]
    in_the_chair = [p for p in panels if p.get("partOf") == [{"reference": f"MedicationAdministration/{dose['id']}"}]]
    assert len(in_the_chair) == len(events_of(clinic.log, "MonitoringReadingRecorded")) == 2
    spo2 = [o for o in resources(document, "Observation") if o["code"]["coding"][0]["code"] == "2708-6"]
    assert [o["valueQuantity"]["value"] for o in spo2] == [97, 97]
    [appointment] = resources(document, "Appointment")
    assert appointment["status"] == "fulfilled"
    assert "collected by Sam Support" in json.dumps(dose)


def test_every_recorded_step_has_one_provenance_naming_who_in_which_role_and_its_update_id() -> None:
    clinic = full_course()
    document = exported(clinic)
    provenances = resources(document, "Provenance")
    steps = recorded_steps(clinic.log)
    assert len(provenances) == len(steps)
    practitioners = {p["id"]: p["identifier"][0]["value"] for p in resources(document, "Practitioner")}
    for provenance, step in zip(provenances, steps, strict=True):
        agent = provenance["agent"][0]
        assert practitioners[agent["who"]["reference"].split("/")[1]] == step.actor.id
        assert agent["role"][0]["coding"][0]["code"] == step.actor.role.value
        identities = [e["what"]["identifier"] for e in provenance["entity"]]
        if step.update_id is not None:
            assert identities[0] == {"system": codes.UPDATE_ID, "value": step.update_id}
        assert {i["value"] for i in identities[-len(step.events) :]} == {str(e.event_id) for e in step.events}


def test_re_exporting_after_more_steps_keeps_every_earlier_id() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    before = {e["resource"]["id"] for e in exported(clinic)["entry"]}
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=1)))
    clinic.dose(1)
    after = {e["resource"]["id"] for e in exported(clinic)["entry"]}
    assert before < after


def test_the_same_stream_exports_the_same_bundle() -> None:
    clinic = full_course()
    assert exported(clinic) == exported(clinic)


def test_a_reader_without_clinical_access_gets_no_support_person_and_no_free_text() -> None:
    clinic = full_course()
    operations = json.dumps(exported(clinic, clinical=False))
    clinical = json.dumps(exported(clinic, clinical=True))
    for text in ("Sam Support", "555-0100", "Fewer panic episodes at work"):
        assert text in clinical
        assert text not in operations
    assert '"RelatedPerson"' not in operations
    assert '"note"' not in operations
    deferred = [
        m for m in resources(exported(clinic, clinical=False), "MedicationAdministration") if m["status"] == "not-done"
    ]
    assert "text" not in deferred[0]["statusReason"][0]  # the code only: the words name the reading
    monitored = monitored_course()
    assert "Sam Support" not in json.dumps(exported(monitored, clinical=False))


def test_an_empty_stream_exports_nothing() -> None:
    assert course_resources("course-00000000-0000-0000-0000-000000000001", [], clinical=True) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rng=st.randoms(use_true_random=False), steps=st.integers(1, 80), cut=st.floats(0, 1))
def test_any_course_exports_valid_resolvable_resources_and_keeps_its_ids_as_it_grows(
    rng: random.Random, steps: int, cut: float
) -> None:
    """Over generated courses (tests/unit/test_properties.py's moves, sensible and odd): every
    resource validates, every reference resolves, and an export of the stream as it stood after
    any earlier step names no resource the later export does not: a re-export replaces, never
    duplicates. Without clinical access: no RelatedPerson and no note, whatever happened."""
    run = play_course(rng, steps, InsuranceStatus.COVERED)
    course_id = str(run.course.course_id)
    boundaries = list(accumulate(len(step.events) for step in recorded_steps(run.log)))
    earlier = run.log[: boundaries[int(cut * (len(boundaries) - 1))]]
    later = [r.model_dump(mode="json") for r in course_resources(course_id, run.log, clinical=True)]
    present = {f"{r['resourceType']}/{r['id']}" for r in later}
    assert len(present) == len(later)
    for resource in later:
        assert set(references(resource)) <= present, resource["resourceType"]
    before = {f"{r.get_resource_type()}/{r.id}" for r in course_resources(course_id, earlier, clinical=True)}
    assert before <= present
    hidden = json.dumps([r.model_dump(mode="json") for r in course_resources(course_id, run.log, clinical=False)])
    assert '"RelatedPerson"' not in hidden and '"note"' not in hidden


def test_a_reading_in_the_chair_carries_sedation_dissociation_and_each_side_effect_with_its_severity() -> None:
    document = exported(monitored_course())
    observations = {o["id"]: o for o in resources(document, "Observation")}
    panel = next(o for o in observations.values() if o["code"]["coding"][0]["code"] == "85353-1" and "partOf" in o)
    members = [observations[m["reference"].split("/")[1]] for m in panel["hasMember"]]
    by_code = {m["code"]["coding"][0]["code"]: m for m in members}
    assert by_code["sedation-moaas"]["valueInteger"] == 5
    assert by_code["dissociation"]["valueCodeableConcept"]["coding"][0]["code"] == "dissociation-resolved"
    assert by_code["nausea"]["valueCodeableConcept"]["coding"][0] == {
        "system": "http://snomed.info/sct", "code": "255604002", "display": "Mild"
    }  # fmt: skip
    assert all(m["partOf"] == panel["partOf"] for m in members)


def test_each_awaited_step_is_a_task_owned_where_the_rules_name_one_with_its_due_date() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    scheduled_at = clinic.now + timedelta(hours=1)
    for actor, command in story.preparation(clinic.now):
        clinic.record(actor, command)  # type: ignore[arg-type]
    clinic.record(story.OPERATIONS, story.schedule(1, scheduled_at))
    document = exported(clinic)
    tasks = {(t["code"]["coding"][0]["code"], t["status"]): t for t in resources(document, "Task")}
    assessment = tasks[("assessment", "completed")]
    practitioners = {p["id"]: p["identifier"][0]["value"] for p in resources(document, "Practitioner")}
    assert practitioners[assessment["owner"]["reference"].split("/")[1]] == story.PRESCRIBER.id
    check_in = tasks[("check-in", "requested")]
    assert datetime.fromisoformat(check_in["restriction"]["period"]["end"]) == scheduled_at
    assert [c["coding"][0]["code"] for c in check_in["performerType"]] == ["nurse", "prescriber"]
    assert "owner" not in check_in  # a nurse or the prescriber: whoever is on the dosing day
    open_tasks = [t for t in resources(document, "Task") if t["status"] == "requested"]
    assert [t["code"]["coding"][0]["code"] for t in open_tasks] == awaiting(clinic.course) == ["check-in"]
