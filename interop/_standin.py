"""TEMPORARY stand-in for interop.fhir_course.course_resources (branch fhir/bundle), deleted at merge."""

from __future__ import annotations

from collections.abc import Sequence

from fhir.resources.R4B.patient import Patient

from course.events import CourseOpened, EventEnvelope


def course_resources(course_id: str, events: Sequence[EventEnvelope], *, clinical: bool) -> list[Patient]:
    opened = next(e.event for e in events if isinstance(e.event, CourseOpened))
    return [
        Patient(id=f"patient-{course_id}", identifier=[{"system": "urn:clinic:patient", "value": opened.patient_id}])
    ]
