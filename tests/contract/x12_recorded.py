"""271 responses in the shape clearinghouses return them (Change Healthcare / Stedi eligibility v3
JSON), trimmed from recordings and re-keyed to fictional people. Each carries the identifying
parts a real one does (name, birth date, member id, address), which must never come back out."""

from __future__ import annotations

from typing import Any

MEMBER = "W220-4471-09"  # the member id the tests send; it must never be logged


def _envelope(benefits: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "meta": {"applicationMode": "production", "traceId": "01JTESTTRACE"},
        "controlNumber": "123456789",
        "tradingPartnerServiceId": "87726",
        "provider": {"providerName": "CALM HARBOR CLINIC", "npi": "1999999984"},
        "subscriber": {
            "memberId": MEMBER,
            "firstName": "JORDAN",
            "lastName": "QUILL",
            "dateOfBirth": "19860214",
            "gender": "F",
            "address": {"address1": "12 ELM ST", "city": "SPRINGFIELD", "state": "OR", "postalCode": "97477"},
        },
        "payer": {"name": "EXAMPLE HEALTH PLAN", "payorIdentification": "87726"},
        "planStatus": [{"statusCode": "1", "status": "Active Coverage", "serviceTypeCodes": ["30"]}],
        "benefitsInformation": benefits,
        **extra,
    }


def _eb(code: str, name: str, service: str = "MH", **fields: Any) -> dict[str, Any]:
    return {"code": code, "name": name, "serviceTypeCodes": [service], "serviceTypes": ["Mental Health"], **fields}


ACTIVE_WITH_COPAY = _envelope(
    [
        _eb("1", "Active Coverage", "30", coverageLevelCode="IND", planCoverage="PPO GOLD"),
        _eb("1", "Active Coverage", inPlanNetworkIndicatorCode="Y"),
        _eb("B", "Co-Payment", timeQualifierCode="27", benefitAmount="30", inPlanNetworkIndicatorCode="Y"),
        _eb("B", "Co-Payment", timeQualifierCode="27", benefitAmount="75", inPlanNetworkIndicatorCode="N"),
        _eb("A", "Co-Insurance", timeQualifierCode="27", benefitPercent="0.2", inPlanNetworkIndicatorCode="Y"),
        _eb("A", "Co-Insurance", timeQualifierCode="27", benefitPercent="0.5", inPlanNetworkIndicatorCode="N"),
        _eb(
            "C",
            "Deductible",
            coverageLevelCode="FAM",
            timeQualifierCode="29",
            benefitAmount="1800",
            inPlanNetworkIndicatorCode="Y",
        ),
        _eb(
            "C",
            "Deductible",
            coverageLevelCode="IND",
            timeQualifierCode="23",
            benefitAmount="1000",
            inPlanNetworkIndicatorCode="Y",
        ),
        _eb(
            "C",
            "Deductible",
            coverageLevelCode="IND",
            timeQualifierCode="29",
            benefitAmount="250.00",
            inPlanNetworkIndicatorCode="Y",
        ),
        _eb(
            "G",
            "Out of Pocket (Stop Loss)",
            coverageLevelCode="IND",
            timeQualifierCode="29",
            benefitAmount="2100",
            inPlanNetworkIndicatorCode="Y",
        ),
        _eb(
            "F",
            "Limitations",
            timeQualifierCode="23",
            quantityQualifierCode="VS",
            benefitQuantity="30",
            inPlanNetworkIndicatorCode="Y",
        ),
        _eb("N", "Authorization not required", authOrCertIndicator="N", inPlanNetworkIndicatorCode="Y"),
    ]
)

INACTIVE = _envelope(
    [_eb("6", "Inactive", "30", coverageLevelCode="IND", planCoverage="PPO GOLD")],
    planStatus=[{"statusCode": "6", "status": "Inactive", "serviceTypeCodes": ["30"]}],
)

NON_COVERED = _envelope(
    [
        _eb("1", "Active Coverage", "30", coverageLevelCode="IND"),
        _eb(
            "I",
            "Non-Covered",
            inPlanNetworkIndicatorCode="W",
            additionalInformation=[{"description": "BEHAVIORAL HEALTH NOT A COVERED BENEFIT"}],
        ),
    ]
)

AUTH_REQUIRED = _envelope(
    [
        _eb("1", "Active Coverage", inPlanNetworkIndicatorCode="Y"),
        _eb(
            "B",
            "Co-Payment",
            timeQualifierCode="27",
            benefitAmount="40",
            inPlanNetworkIndicatorCode="Y",
            authOrCertIndicator="Y",
        ),
        _eb(
            "A",
            "Co-Insurance",
            timeQualifierCode="27",
            benefitPercent="0",
            inPlanNetworkIndicatorCode="Y",
            authOrCertIndicator="Y",
        ),
    ]
)

CARVED_OUT = _envelope(
    [
        _eb("1", "Active Coverage", "30"),
        _eb(
            "U",
            "Contact Following Entity for Eligibility or Benefit Information",
            benefitsRelatedEntities=[{"entityIdentifier": "Third-Party Administrator", "entityName": "MIND BH"}],
        ),
    ]
)


def rejection(code: str, description: str, followup: str = "Please Correct and Resubmit") -> dict[str, Any]:
    """A 271 whose AAA segment rejects the inquiry: no benefits, one error."""
    body = _envelope([])
    body.pop("planStatus")
    body["errors"] = [
        {"field": "AAA", "code": code, "description": description, "followupAction": followup, "location": "Loop 2100C"}
    ]
    return body


INVALID_MEMBER = rejection("72", "Invalid/Missing Subscriber/Insured ID")
PAYER_DOWN = rejection("42", "Unable to Respond at Current Time", "Resubmission Allowed")
