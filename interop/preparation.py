"""What preparation records that an EHR files on its own: the signed consent, the support person."""

from __future__ import annotations

from urllib.parse import quote

from course.events import ConsentRecorded, SupportPersonRecorded
from interop import codes
from interop.shapes import Json, instant
from interop.steps import resource_id


def consent(course_id: str, event_id: str, event: ConsentRecorded, patient: Json) -> Json:
    """Consent to treatment on the form version the patient signed (the policy consented to: R4
    ppc-1 wants a policy or a rule)."""
    return {
        "resourceType": "Consent",
        "id": resource_id(course_id, "Consent", event_id),
        "status": "active",
        "scope": codes.CONSENT_TREATMENT.concept(),
        "category": [codes.CONSENT_DOCUMENT.concept()],
        "patient": patient,
        "dateTime": instant(event.signed_at),
        "performer": [patient],
        "policy": [{"uri": f"{codes.CONSENT_FORM}:{quote(event.form_version, safe='')}"}],
        "sourceAttachment": {"title": f"Consent form version {event.form_version}"},
    }


def support_person(course_id: str, event_id: str, event: SupportPersonRecorded, patient: Json) -> Json:
    """The support person as the course has them: for readers allowed clinical data only."""
    relationship = codes.RELATIONSHIPS.get(event.relationship.strip().lower())
    return {
        "resourceType": "RelatedPerson",
        "id": resource_id(course_id, "RelatedPerson", event_id),
        "patient": patient,
        "relationship": [
            relationship.concept(text=event.relationship) if relationship else {"text": event.relationship}
        ],
        "name": [{"text": event.name}],
        "telecom": [{"system": "phone", "value": event.phone}],
    }
