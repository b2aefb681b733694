"""The few JSON shapes every FHIR resource here is made of: references, instants, quantities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interop import codes

Json = dict[str, Any]


def ref(resource: Json) -> Json:
    """A relative reference (`Patient/<id>`): resolves inside a Bundle and in a bulk export alike."""
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def instant(moment: datetime) -> str:
    return moment.isoformat()


def quantity(value: float, unit: codes.Code) -> Json:
    return {"value": value, "unit": unit.display, "system": unit.system, "code": unit.code}


@dataclass(frozen=True)
class Origin:
    """Where a resource comes from: the course, the event, its time, the patient and who recorded it."""

    course_id: str
    event_id: str
    at: datetime
    patient: Json
    performer: Json
