"""The walk over one course's event stream that makes its FHIR R4B resources (as JSON).

`CourseWalk` goes through the stream step by step (interop/steps.py), folding the course's state as
the workflow does (course/state.py), and makes of each fact the resource an EHR files it as:

    CourseOpened            Patient (pseudonymous identifier only), CarePlan, Condition, Practitioners
    EligibilityChecked      CoverageEligibilityResponse (+ its request, the payer, Coverage)
    AssessmentRecorded      vital signs, GAD-7 total; the Condition as assessed
    ConsentRecorded         Consent (treatment, the form version)
    SupportPersonRecorded   RelatedPerson (clinical readers only)
    SessionScheduled        Appointment (booked -> checked-in -> fulfilled; cancelled if moved or deferred)
    CheckedIn               vital signs before the dose
    DoseAdministered        MedicationAdministration (ketamine, mg/kg, route); the readings in the chair
                            (vital signs, SpO2, sedation, dissociation, side effects) are part of it
    DosingSessionCompleted  MedicationAdministration, the vitals and side effects after it (one-step path), GAD-7
    DosingSessionDeferred   MedicationAdministration `not-done` with its reason, and the vitals that deferred it
    Integration/MaintenanceSessionRecorded  Procedure (psychotherapy, the modality), GAD-7
    every awaited step      Task (interop/tasks.py)
    every recorded step     Provenance: who (staff id, role), when, the step's update id and event ids

`clinical=False` (a reader without clinical access) leaves out the RelatedPerson and every free
text: no notes (intentions, review rationales, reasons in words, who collected the patient).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from course.commands import Actor, BloodPressure, MaintenanceKind, Route
from course.events import (
    AssessmentRecorded,
    CareTeamReassigned,
    CheckedIn,
    ClinicalReviewRecorded,
    ConsentRecorded,
    CourseClosed,
    CourseOpened,
    DomainEvent,
    DoseAdministered,
    DosingSessionCompleted,
    DosingSessionDeferred,
    EligibilityChecked,
    EventEnvelope,
    IntegrationSessionRecorded,
    IntentionsRecorded,
    MaintenanceSessionRecorded,
    MonitoringReadingRecorded,
    PatientDischarged,
    SessionScheduled,
    SupportPersonRecorded,
)
from course.reasons import Facts, reason_in_words, reasons_in_words
from course.state import CourseState, evolve
from interop import codes, coverage, preparation
from interop.care_plan import PlanParts, care_plan
from interop.observations import ChairSigns, gad7_total, vital_signs
from interop.provenance import provenance
from interop.shapes import Json, Origin, instant, quantity, ref
from interop.steps import RecordedStep, recorded_steps, resource_id, shared_id
from interop.tasks import TaskBook

# An appointment has a start and an end (FHIR app-2/app-3); the course records only the start. A
# dosing session is booked as the dose (about 40 minutes) and at least two hours of observation.
DOSING_SLOT = timedelta(hours=3)
SYSTEM_STAFF_ID = "system"  # course.commands.SYSTEM_ACTOR: the workflow itself (timers, the payer)


class CourseWalk:
    """One pass over the stream; resources are kept in the order they were first made, and a
    resource a later event changes (an appointment fulfilled, a task completed) is updated in place."""

    def __init__(self, course_id: str, events: Sequence[EventEnvelope], clinical: bool) -> None:
        self.course_id = course_id
        self.events = events
        self.clinical = clinical
        self.resources: dict[str, Json] = {}
        self.state: CourseState | None = None
        self.appointments: dict[int, Json] = {}  # the current Appointment of each session number
        self.doses: dict[int, Json] = {}  # the MedicationAdministration of each session given
        self.condition_at: datetime | None = None
        opened = events[0].event
        if not isinstance(opened, CourseOpened):
            raise ValueError("a course stream starts with CourseOpened")
        self.opened = opened
        self.patient = self._add(
            {
                "resourceType": "Patient",
                "id": shared_id("Patient", opened.patient_id),
                "identifier": [{"system": codes.PATIENT_ID, "value": opened.patient_id}],
            }
        )
        self.care_plan = self._add({"resourceType": "CarePlan", "id": resource_id(course_id, "CarePlan")})
        self.condition = self._add({"resourceType": "Condition", "id": resource_id(course_id, "Condition")})
        self.tasks = TaskBook(course_id, ref(self.patient), ref(self.care_plan), self._practitioner)
        self.parts = PlanParts(ref(self.patient), author={}, condition=None, opened_at=events[0].occurred_at)

    def build(self) -> list[Json]:
        provenances: list[Json] = []
        for step in recorded_steps(self.events):
            made: list[Json] = []
            for envelope in step.events:
                self.state = evolve(self.state, envelope)
                made += self._facts(envelope, step)
            assert self.state is not None
            made += [self._add(task) for task in self.tasks.after(step, self.state)]
            provenances.append(self._provenance(step, made))
        assert self.state is not None
        self._finish_care_plan(self.state)
        if self.state.condition is None:
            del self.resources[self.condition["id"]]
        else:
            self._finish_condition(self.state)
        return [*self.resources.values(), *provenances]

    def _add(self, resource: Json) -> Json:
        return self.resources.setdefault(resource["id"], resource)

    def _who(self, actor: Actor) -> Json:
        if actor.id == SYSTEM_STAFF_ID:
            device = {
                "resourceType": "Device",
                "id": shared_id("Device", "treatment-course-service"),
                "deviceName": [{"name": "treatment course service", "type": "user-friendly-name"}],
            }
            return ref(self._add(device))
        return self._practitioner(actor.id)

    def _practitioner(self, staff_id: str) -> Json:
        """Staff by their staff id only: the service holds no names."""
        practitioner = {
            "resourceType": "Practitioner",
            "id": shared_id("Practitioner", staff_id),
            "identifier": [{"system": codes.STAFF_ID, "value": staff_id}],
        }
        return ref(self._add(practitioner))

    def _origin(self, eid: str, at: datetime, actor: Actor) -> Origin:
        return Origin(self.course_id, eid, at, ref(self.patient), self._who(actor))

    def _note(self, at: datetime, actor: Actor, text: str) -> None:
        """Free text, on the care plan: for clinical readers only."""
        if self.clinical:
            self.parts.notes.append({"authorReference": self._who(actor), "time": instant(at), "text": text})

    @property
    def _has_condition(self) -> bool:
        return self.state is not None and self.state.condition is not None

    # --- the events -------------------------------------------------------------------------------

    def _facts(self, envelope: EventEnvelope, step: RecordedStep) -> list[Json]:
        """The resources this event makes or changes (the care plan when nothing else)."""
        event, at, actor = envelope.event, envelope.occurred_at, envelope.metadata.actor
        eid = str(envelope.event_id)
        match event:
            case CourseOpened():
                for staff in (event.clinician_id, event.therapist_id):
                    if staff:
                        self._practitioner(staff)
                self.condition_at = at if event.condition is not None else None
                return [self.patient, self.care_plan, self.condition]
            case EligibilityChecked():
                return self._eligibility(event, eid, at)
            case AssessmentRecorded():
                self.condition_at = at
                if event.relative_contraindication_rationale:
                    self._note(at, actor, f"Relative contraindications: {event.relative_contraindication_rationale}")
                vitals = self._vitals(eid, at, actor, event.blood_pressure, event.heart_rate)
                return [*vitals, self._gad7(eid, at, actor, event.gad7), self.condition]
            case IntentionsRecorded():
                self._note(at, actor, f"Intentions: {event.goals}")
            case ConsentRecorded():
                return [self._consent(event, eid)]
            case SupportPersonRecorded() if self.clinical:
                return [self._support_person(event, eid)]
            case SessionScheduled():
                return self._scheduled(event, eid, at)
            case ClinicalReviewRecorded():
                self._note(at, actor, f"Clinical review ({event.decision.value}): {event.rationale}")
            case CareTeamReassigned():
                for staff in (event.clinician_id, event.therapist_id):
                    if staff:
                        self._practitioner(staff)
            case CourseClosed():
                self.parts.closed_at = at
                if event.reasons and self.state is not None:
                    facts = Facts(policy=self.state.policy, reading=self.state.assessment_blood_pressure)
                    self._note(at, actor, "Closed: " + "; ".join(reasons_in_words(event.reasons, facts)))
            case _:
                return self._session_facts(event, eid, at, actor, step) or [self.care_plan]
        return [self.care_plan]

    def _session_facts(
        self, event: DomainEvent, eid: str, at: datetime, actor: Actor, step: RecordedStep
    ) -> list[Json]:
        """Dosing days and therapy sessions."""
        match event:
            case CheckedIn():
                appointment = self.appointments.get(event.session_number)
                if appointment is not None:
                    appointment["status"] = "checked-in"
                vitals = self._vitals(eid, at, actor, event.vitals, event.vitals.heart_rate)
                return [*vitals, *([appointment] if appointment else [])]
            case DoseAdministered():
                given = self._administration(eid, event.given_at, actor, event.route, event.dose_mg_per_kg)
                self.doses[event.session_number] = given
                return [given]
            case MonitoringReadingRecorded():
                dose = self.doses.get(event.session_number)
                signs = ChairSigns(event.sedation.score, event.dissociation, tuple(event.side_effects))
                return self._vitals(
                    eid, event.taken_at, actor, event.blood_pressure, event.heart_rate,
                    spo2=event.spo2, chair=signs, part_of=dose,
                )  # fmt: skip
            case PatientDischarged():
                dose = self.doses.get(event.session_number)
                if dose is None:
                    return []
                if self.clinical:
                    text = (f"Discharged after {event.minutes_observed} minutes observed; collected by "
                            f"{event.collected_by} ({event.relationship}).")  # fmt: skip
                    dose.setdefault("note", []).append({"time": instant(event.discharged_at), "text": text})
                return [dose]
            case DosingSessionCompleted():
                return self._completed(event, eid, at, actor, step)
            case DosingSessionDeferred():
                return self._deferred(event, eid, at, actor)
            case IntegrationSessionRecorded():
                modality = codes.MODALITIES[event.modality]
                code = codes.PSYCHOTHERAPY.concept(modality, text=f"Psychotherapy: {modality.display}")
                return self._procedure(eid, event.held_at, actor, code, event.gad7)
            case MaintenanceSessionRecorded():
                kind = codes.MAINTENANCE_SESSION if event.kind is MaintenanceKind.KETAMINE else codes.PSYCHOTHERAPY
                code = kind.concept(text=f"Maintenance session: {event.kind.value.replace('_', ' ')}")
                return self._procedure(eid, event.held_at, actor, code, event.gad7)
        return []

    # --- clinical resources -----------------------------------------------------------------------

    def _vitals(
        self,
        eid: str,
        at: datetime,
        actor: Actor,
        pressure: BloodPressure,
        heart_rate: int,
        *,
        spo2: int | None = None,
        chair: ChairSigns | None = None,
        part_of: Json | None = None,
    ) -> list[Json]:
        origin = self._origin(eid, at, actor)
        observations = vital_signs(origin, pressure, heart_rate, spo2=spo2, chair=chair, part_of=part_of)
        self.parts.supporting.append(ref(observations[0]))
        return [self._add(o) for o in observations]

    def _gad7(self, eid: str, at: datetime, actor: Actor, score: int, part_of: Json | None = None) -> Json:
        observation = gad7_total(self._origin(eid, at, actor), score, part_of)
        self.parts.supporting.append(ref(observation))
        return self._add(observation)

    def _administration(self, eid: str, at: datetime, actor: Actor, route: Route, dose: float) -> Json:
        given: Json = {
            "resourceType": "MedicationAdministration",
            "id": resource_id(self.course_id, "MedicationAdministration", eid),
            "status": "completed",
            "medicationCodeableConcept": codes.KETAMINE.concept(),
            "subject": ref(self.patient),
            "effectiveDateTime": instant(at),
            "performer": [{"actor": self._who(actor)}],
            "dosage": {"route": codes.ROUTES[route].concept(), "dose": quantity(dose, codes.MG_PER_KG)},
        }
        if self._has_condition:
            given["reasonReference"] = [ref(self.condition)]
        self.parts.dosing.append(ref(given))
        return self._add(given)

    def _completed(
        self, event: DosingSessionCompleted, eid: str, at: datetime, actor: Actor, step: RecordedStep
    ) -> list[Json]:
        made: list[Json] = []
        monitored = any(isinstance(e.event, PatientDischarged) for e in step.events)
        if monitored and event.session_number in self.doses:
            # Exported when given; the vitals "after" are the last reading in the chair, exported then.
            dose = self.doses[event.session_number]
        else:
            dose = self._administration(eid, at, actor, event.route, event.dose_mg_per_kg)
            self.doses[event.session_number] = dose
            after = event.post_vitals
            signs = ChairSigns(side_effects=tuple(event.side_effects))
            made += self._vitals(eid, at, actor, after, after.heart_rate, chair=signs, part_of=dose)
        made.append(dose)
        if event.gad7 is not None:
            made.append(self._gad7(eid, at, actor, event.gad7))
        appointment = self.appointments.get(event.session_number)
        if appointment is not None:
            appointment["status"] = "fulfilled"
            self.parts.appointments[appointment["id"]].append(ref(dose))
            made.append(appointment)
        return made

    def _deferred(self, event: DosingSessionDeferred, eid: str, at: datetime, actor: Actor) -> list[Json]:
        vitals = self._vitals(eid, at, actor, event.vitals, event.vitals.heart_rate)
        reason = codes.reason_code(event.reason)
        words = None
        if self.clinical and self.state is not None:
            words = reason_in_words(event.reason, Facts(policy=self.state.policy, reading=event.vitals))
        not_given = self._add(
            {
                "resourceType": "MedicationAdministration",
                "id": resource_id(self.course_id, "MedicationAdministration", eid),
                "status": "not-done",
                "statusReason": [reason.concept(text=words)],
                "medicationCodeableConcept": codes.KETAMINE.concept(),
                "subject": ref(self.patient),
                "effectiveDateTime": instant(at),
                "performer": [{"actor": self._who(actor)}],
                "supportingInformation": [ref(vitals[0])],
            }
        )
        self.parts.dosing.append(ref(not_given))
        made = [*vitals, not_given]
        appointment = self.appointments.get(event.session_number)
        if appointment is not None:
            appointment.update(status="cancelled", cancelationReason=reason.concept())
            self.parts.appointments[appointment["id"]].append(ref(not_given))
            made.append(appointment)
        return made

    def _procedure(self, eid: str, held_at: datetime, actor: Actor, code: Json, gad7: int | None) -> list[Json]:
        procedure: Json = {
            "resourceType": "Procedure",
            "id": resource_id(self.course_id, "Procedure", eid),
            "status": "completed",
            "code": code,
            "subject": ref(self.patient),
            "basedOn": [ref(self.care_plan)],
            "performedDateTime": instant(held_at),
            "performer": [{"actor": self._who(actor)}],
        }
        if self._has_condition:
            procedure["reasonReference"] = [ref(self.condition)]
        self.parts.therapy.append(ref(procedure))
        made = [self._add(procedure)]
        if gad7 is not None:
            made.append(self._gad7(eid, held_at, actor, gad7, part_of=procedure))
        return made

    # --- preparation, scheduling, money -----------------------------------------------------------

    def _consent(self, event: ConsentRecorded, eid: str) -> Json:
        signed = self._add(preparation.consent(self.course_id, eid, event, ref(self.patient)))
        self.parts.supporting.append(ref(signed))
        return signed

    def _support_person(self, event: SupportPersonRecorded, eid: str) -> Json:
        person = self._add(preparation.support_person(self.course_id, eid, event, ref(self.patient)))
        self.parts.supporting.append(ref(person))
        return person

    def _scheduled(self, event: SessionScheduled, eid: str, at: datetime) -> list[Json]:
        made: list[Json] = []
        earlier = self.appointments.get(event.session_number)
        if earlier is not None and earlier["status"] in ("booked", "checked-in"):
            earlier["status"] = "cancelled"  # moved: the new time replaces it
            made.append(earlier)
        appointment: Json = {
            "resourceType": "Appointment",
            "id": resource_id(self.course_id, "Appointment", eid),
            "status": "booked",
            "serviceType": [codes.DOSING_SESSION.concept()],
            "start": instant(event.scheduled_at),
            "end": instant(event.scheduled_at + DOSING_SLOT),
            "created": instant(at),
            "participant": [{"actor": ref(self.patient), "status": "accepted"}],
        }
        if self._has_condition:
            appointment["reasonReference"] = [ref(self.condition)]
        self.appointments[event.session_number] = self._add(appointment)
        self.parts.appointments[appointment["id"]] = []
        return [*made, appointment]

    def _eligibility(self, event: EligibilityChecked, eid: str, at: datetime) -> list[Json]:
        insurer = self._add(coverage.payer(self.opened.payer_id))
        covered_by = None
        if self.opened.payer_id is not None:
            covered_by = self._add(coverage.coverage(self.course_id, ref(self.patient), insurer))
        origin = Origin(self.course_id, eid, at, ref(self.patient), performer={})  # the payer answers
        request, response = coverage.eligibility(origin, event, insurer, covered_by)
        self._add(request)
        self.parts.supporting.append(ref(response))
        return [self._add(response), request, insurer, *([covered_by] if covered_by else [])]

    # --- the plan, the condition, provenance ------------------------------------------------------

    def _finish_care_plan(self, state: CourseState) -> None:
        self.parts.author = self._practitioner(state.clinician_id)
        self.parts.condition = ref(self.condition) if state.condition is not None else None
        self.parts.tasks = [ref(r) for r in self.resources.values() if r["resourceType"] == "Task"]
        self.care_plan.update(care_plan(state, self.parts))

    def _finish_condition(self, state: CourseState) -> None:
        assert state.condition is not None
        icd, snomed = codes.CONDITIONS[state.condition]
        self.condition.update(
            {
                "clinicalStatus": codes.CONDITION_ACTIVE.concept(),
                "verificationStatus": codes.CONDITION_CONFIRMED.concept(),
                "code": icd.concept(snomed),
                "subject": ref(self.patient),
            }
        )
        if self.condition_at is not None:
            self.condition["recordedDate"] = instant(self.condition_at)

    def _provenance(self, step: RecordedStep, made: list[Json]) -> Json:
        targets: dict[str, Json] = {}
        for resource in made:
            if resource is self.condition and not self._has_condition:
                continue  # no condition named yet: the Condition may never be exported
            targets.setdefault(f"{resource['resourceType']}/{resource['id']}", ref(resource))
        return provenance(self.course_id, step, list(targets.values()) or [ref(self.care_plan)], self._who(step.actor))
