"""One Provenance per recorded step: who recorded it, in which role, when, and the step's identity.

The identity is what the clinic's systems already name the step by: the update id the API gave it
(the request id, `Idempotency-Key`-derived) and the ids of the events it stored, as entities (FHIR
Provenance has no identifier of its own). A break-glass step carries its reason code.
"""

from __future__ import annotations

from interop import codes
from interop.shapes import Json, instant
from interop.steps import RecordedStep, resource_id


def provenance(course_id: str, step: RecordedStep, targets: list[Json], who: Json) -> Json:
    identity = [(codes.UPDATE_ID, step.update_id)] if step.update_id is not None else []
    identity += [(codes.EVENT_ID, str(e.event_id)) for e in step.events]
    record: Json = {
        "resourceType": "Provenance",
        "id": resource_id(course_id, "Provenance", step.first.event_id),
        "target": targets,
        "occurredDateTime": instant(step.first.occurred_at),
        "recorded": instant(step.first.occurred_at),
        "activity": codes.step_code(step.name).concept(),
        "agent": [{"type": codes.AUTHOR.concept(), "role": [codes.ROLES[step.actor.role].concept()], "who": who}],
        "entity": [
            {"role": "source", "what": {"identifier": {"system": system, "value": value}}} for system, value in identity
        ],
    }
    signature = step.first.metadata.signature
    if signature is not None and signature.break_glass:
        record["reason"] = [codes.reason_code(signature.break_glass).concept()]
    return record
