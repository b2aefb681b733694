"""One course as FHIR R4B resources: pure functions of its event stream (the walk: interop/walk.py).

`course_resources` and `course_bundle` are what the API, the CLI and the bulk export call;
`clinical=False` (a reader without clinical access: course.access.clinical_export) leaves out the
RelatedPerson and every free text. Every resource is validated by its fhir.resources R4B model.
"""

from __future__ import annotations

from collections.abc import Sequence

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource

from course.events import EventEnvelope
from interop import codes
from interop.shapes import Json, instant
from interop.steps import resource_id
from interop.walk import CourseWalk

DEFAULT_BASE_URL = "urn:treatment-courses:fhir"


def course_resources(course_id: str, events: Sequence[EventEnvelope], *, clinical: bool) -> list[Resource]:
    """Every resource of one course, each validated by its fhir.resources R4B model (an invalid one
    raises). Empty before the course's first event is stored."""
    return [validated(r) for r in course_json(course_id, events, clinical=clinical)]


def course_json(course_id: str, events: Sequence[EventEnvelope], *, clinical: bool) -> list[Json]:
    """The same resources as plain JSON dicts, not yet validated (what a bulk export streams)."""
    if not events:
        return []
    return CourseWalk(course_id, events, clinical).build()


def course_bundle(
    course_id: str, events: Sequence[EventEnvelope], *, clinical: bool, base_url: str = DEFAULT_BASE_URL
) -> Bundle:
    """The course as a `collection` Bundle. Each entry's fullUrl is `base_url/Type/id`, so the
    resources' relative references (`Patient/<id>`) resolve inside it."""
    base = base_url.rstrip("/")
    entries = [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
        for r in course_json(course_id, events, clinical=clinical)
    ]
    bundle: Json = {
        "resourceType": "Bundle",
        "id": resource_id(course_id, "Bundle"),
        "identifier": {"system": codes.COURSE_ID, "value": course_id.removeprefix("course-")},
        "type": "collection",
        "entry": entries,
    }
    if events:
        bundle["timestamp"] = instant(max(e.occurred_at for e in events))
    return Bundle.model_validate(bundle)


def validated(resource: Json) -> Resource:
    """The resource as its fhir.resources R4B model: an invalid one raises pydantic's ValidationError."""
    model = get_fhir_model_class(resource["resourceType"])
    checked = model.model_validate(resource)
    assert isinstance(checked, Resource)
    return checked
