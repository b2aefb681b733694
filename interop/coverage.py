"""The payer's answer as FHIR: a CoverageEligibilityResponse, the request it answers, the payer.

R4 requires a response to name its request and insurer, so both are exported with it (the request
carries nothing the response does not). A course without a payer (self-pay) is answered by the
clinic's "self-pay" Organization and has no Coverage; the outcome is a code, never the payer's prose.
"""

from __future__ import annotations

from course.commands import InsuranceStatus
from course.events import EligibilityChecked
from interop import codes
from interop.shapes import Json, Origin, instant, ref
from interop.steps import resource_id, shared_id


def payer(payer_id: str | None) -> Json:
    if payer_id is None:
        return {"resourceType": "Organization", "id": shared_id("Organization", "self-pay"), "name": "Self-pay"}
    return {
        "resourceType": "Organization",
        "id": shared_id("Organization", payer_id),
        "identifier": [{"system": codes.PAYER_ID, "value": payer_id}],
    }


def coverage(course_id: str, patient: Json, insurer: Json) -> Json:
    return {
        "resourceType": "Coverage",
        "id": resource_id(course_id, "Coverage"),
        "status": "active",
        "beneficiary": patient,
        "payor": [ref(insurer)],
    }


def eligibility(origin: Origin, event: EligibilityChecked, insurer: Json, covered_by: Json | None) -> tuple[Json, Json]:
    """The request and the response of one eligibility check."""
    course_id, event_id, at, patient = origin.course_id, origin.event_id, origin.at, origin.patient
    request: Json = {
        "resourceType": "CoverageEligibilityRequest",
        "id": resource_id(course_id, "CoverageEligibilityRequest", event_id),
        "status": "active",
        "purpose": ["benefits"],
        "patient": patient,
        "created": instant(at),
        "insurer": ref(insurer),
    }
    response: Json = {
        "resourceType": "CoverageEligibilityResponse",
        "id": resource_id(course_id, "CoverageEligibilityResponse", event_id),
        "status": "active",
        "purpose": ["benefits"],
        "patient": patient,
        "created": instant(at),
        "request": ref(request),
        "outcome": "error" if event.status is InsuranceStatus.UNKNOWN else "complete",
        "insurer": ref(insurer),
        # The payer's answer as codes: covered, not_covered, prior_auth_required, and a reason code.
        "disposition": event.status.value + (f": {event.reason}" if event.reason else ""),
    }
    if covered_by is not None:
        request["insurance"] = [{"coverage": ref(covered_by)}]
        response["insurance"] = [
            {"coverage": ref(covered_by), "inforce": event.status is InsuranceStatus.COVERED, **_benefits(event)}
        ]
    return request, response


def _benefits(event: EligibilityChecked) -> Json:
    """In or out of network, and the patient's share, for the psychotherapy benefit."""
    item: Json = {"category": codes.PSYCHOTHERAPY.concept()}
    if event.in_network is not None:
        item["network"] = (codes.IN_NETWORK if event.in_network else codes.OUT_OF_NETWORK).concept()
    share, benefits = event.patient_share, list[Json]()
    if share is not None:
        money = [
            (codes.BENEFIT_COPAY, share.copay),
            (codes.BENEFIT_DEDUCTIBLE, share.deductible_remaining),
            (codes.BENEFIT_OUT_OF_POCKET, share.out_of_pocket_remaining),
        ]
        benefits += [
            {"type": code.concept(), "allowedMoney": {"value": float(amount), "currency": "USD"}}
            for code, amount in money
            if amount is not None
        ]
        if share.coinsurance_rate is not None:
            percent = round(float(share.coinsurance_rate) * 100)
            benefits.append({"type": codes.BENEFIT_COPAY_PERCENT.concept(), "allowedUnsignedInt": percent})
    if benefits:
        item["benefit"] = benefits
    return {"item": [item]} if len(item) > 1 else {}
