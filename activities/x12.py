"""A clearinghouse client for real-time eligibility: X12 270 out, 271 back, both as JSON.

The JSON follows the shape clearinghouses render 270/271 in (Change Healthcare's "medical network
eligibility v3", also served by Stedi): `encounter.serviceTypeCodes`, `benefitsInformation[]`,
`errors[]`. The X12 element each field carries is named where it is read.

Failure policy (the workflow retries with backoff inside a bounded schedule-to-close):
- network error, timeout, HTTP 5xx/408/429, AAA 42/80 (payer system down): `PayerUnavailable`,
  retried; when the schedule-to-close runs out the workflow records `unknown`.
- AAA rejection (invalid member, subscriber not found, ...), other HTTP 4xx, an unreadable
  body: `unknown` with a reason code for staff, returned at once (asking again cannot help).
The member id is in the request body only: never in a log line, an error message or a reason.
"""

from __future__ import annotations

import re
import ssl
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.ports import EligibilityRequest, EligibilityResult, PayerUnavailable, reason_code
from course.commands import InsuranceStatus, PatientShare

log = structlog.get_logger(__name__)

# X12 service type codes (EB03): MH mental health is what the clinic asks about; 30 is the plan
# as a whole, used when the payer answers only at plan level.
MENTAL_HEALTH, PLAN_LEVEL = "MH", "30"

# EB01 eligibility or benefit information codes.
ACTIVE = {"1", "2", "3", "4", "5"}  # active coverage (5: active, pending investigation)
INACTIVE = {"6", "7", "8"}  # inactive (7/8: pending update or investigation)
NON_COVERED, EXCLUSIONS = "I", "E"
CO_INSURANCE, CO_PAYMENT, DEDUCTIBLE, OUT_OF_POCKET = "A", "B", "C", "G"
CONTACT_OTHER_ENTITY, CANNOT_PROCESS = "U", "V"  # U: benefits carved out, e.g. to a behavioural health plan
# EB06 time period qualifier: 29 remaining.
REMAINING = "29"

# AAA03 reject reason codes staff see most, as readable reason codes. 42 and 80 mean the payer
# could not answer now: those are retried, not reported.
RETRYABLE_REJECTIONS = {"42", "80"}
REJECTION_REASONS = {
    "41": "authorization_access_restrictions",
    "43": "invalid_provider_id",
    "51": "provider_not_on_file",
    "58": "invalid_date_of_birth",
    "64": "invalid_patient_id",
    "65": "invalid_patient_name",
    "67": "patient_not_found",
    "71": "date_of_birth_mismatch",
    "72": "invalid_member_id",
    "73": "invalid_subscriber_name",
    "75": "subscriber_not_found",
    "76": "duplicate_member_id",
    "78": "subscriber_not_in_plan",
    "79": "invalid_participant_id",
    "T4": "payer_id_missing",
}


class _Lenient(BaseModel):
    # A 271 carries far more than we read (names, addresses, plan dates): ignore it, keep nothing.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Benefit(_Lenient):
    """One EB segment."""

    code: str  # EB01
    coverage_level: str | None = Field(None, alias="coverageLevelCode")  # EB02: IND, FAM, ...
    service_types: list[str] = Field(default_factory=list, alias="serviceTypeCodes")  # EB03
    time_qualifier: str | None = Field(None, alias="timeQualifierCode")  # EB06
    amount: Decimal | None = Field(None, alias="benefitAmount")  # EB07
    percent: Decimal | None = Field(None, alias="benefitPercent")  # EB08, a fraction: 0.2 = 20 %
    authorization: str | None = Field(None, alias="authOrCertIndicator")  # EB11: Y, N, U
    in_network: str | None = Field(None, alias="inPlanNetworkIndicatorCode")  # EB12: Y, N, W, U


class Rejection(_Lenient):
    """One AAA segment."""

    code: str  # AAA03 reject reason
    followup: str | None = Field(None, alias="followupAction")  # AAA04


class Response271(_Lenient):
    benefits: list[Benefit] = Field(default_factory=list, alias="benefitsInformation")
    errors: list[Rejection] = Field(default_factory=list)


def control_number(course_id: str) -> str:
    """ISA/ST control number: nine digits, stable per course so a retry is recognisable."""
    try:
        value = uuid.UUID(course_id).int
    except ValueError:
        value = int.from_bytes(course_id.encode()[-8:].rjust(8, b"\0"), "big")
    return f"{value % 1_000_000_000:09d}"


def request_270(request: EligibilityRequest, provider_npi: str, organization: str, today: date) -> dict[str, Any]:
    return {
        "controlNumber": control_number(request.course_id),
        "tradingPartnerServiceId": request.payer_id,  # NM1*PR payer id
        "provider": {"npi": provider_npi, "organizationName": organization},  # NM1*1P, XX qualifier
        "subscriber": {"memberId": request.member_ref},  # NM1*IL, MI qualifier
        "encounter": {"serviceTypeCodes": [request.service_type], "dateOfService": today.strftime("%Y%m%d")},
    }


def rejection_reason(code: str) -> str:
    slug = REJECTION_REASONS.get(code)
    safe = re.sub(r"[^a-z0-9]", "", code.lower())[:8] or "unknown"
    # Through reason_code too: a mistyped slug in the table above must not reach the course.
    return reason_code(f"aaa_{safe}_{slug}" if slug else f"aaa_{safe}")


def _relevant(benefits: list[Benefit]) -> list[Benefit]:
    """Benefits for mental health; the plan-level ones when the payer says nothing specific."""
    specific = [b for b in benefits if MENTAL_HEALTH in b.service_types]
    return specific or [b for b in benefits if PLAN_LEVEL in b.service_types or not b.service_types]


def _network(benefits: list[Benefit]) -> str | None:
    """The network the clinic's visit falls in: in-network figures when the payer gives them."""
    flags = {b.in_network for b in benefits}
    return "Y" if "Y" in flags else "N" if "N" in flags else None


def _first(benefits: list[Benefit], code: str, network: str | None, *, remaining: bool = False) -> Benefit | None:
    candidates = [
        b
        for b in benefits
        if b.code == code
        and (network is None or b.in_network in (network, None, "W"))
        and (not remaining or b.time_qualifier == REMAINING)
    ]
    # Individual figures before family ones: the patient's own deductible is what they meet first.
    candidates.sort(key=lambda b: b.coverage_level != "IND")
    return candidates[0] if candidates else None


def patient_share(benefits: list[Benefit], network: str | None) -> PatientShare | None:
    copay = _first(benefits, CO_PAYMENT, network)
    coinsurance = _first(benefits, CO_INSURANCE, network)
    deductible = _first(benefits, DEDUCTIBLE, network, remaining=True)
    out_of_pocket = _first(benefits, OUT_OF_POCKET, network, remaining=True)
    share = PatientShare(
        copay=copay.amount if copay else None,
        coinsurance_rate=coinsurance.percent if coinsurance else None,
        deductible_remaining=deductible.amount if deductible else None,
        out_of_pocket_remaining=out_of_pocket.amount if out_of_pocket else None,
    )
    return share if share != PatientShare() else None


def interpret_271(body: object) -> EligibilityResult:
    """Map a 271 to the course's insurance status. Raises PayerUnavailable for AAA 42/80."""
    try:
        response = Response271.model_validate(body)
    except ValidationError:
        # The validation text would echo the body, which holds the member's details.
        return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="unreadable_271")
    if response.errors:
        rejections = [e.code for e in response.errors]
        retryable = [code for code in rejections if code in RETRYABLE_REJECTIONS]
        if retryable:
            raise PayerUnavailable(f"payer could not respond (AAA {retryable[0]})")
        return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason=rejection_reason(rejections[0]))

    benefits = _relevant(response.benefits)
    codes = {b.code for b in benefits}
    network = _network(benefits)
    in_network = None if network is None else network == "Y"
    if codes & {NON_COVERED, EXCLUSIONS}:
        return EligibilityResult(status=InsuranceStatus.NOT_COVERED, reason="non_covered", in_network=in_network)
    if CONTACT_OTHER_ENTITY in codes:
        return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="benefits_carved_out")
    if not codes & ACTIVE:
        if codes & INACTIVE:
            return EligibilityResult(status=InsuranceStatus.NOT_COVERED, reason="inactive_coverage")
        reason = "payer_cannot_process" if CANNOT_PROCESS in codes else "no_coverage_information"
        return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason=reason)

    share = patient_share(benefits, network)
    if any(b.authorization == "Y" for b in benefits if network is None or b.in_network in (network, None, "W")):
        return EligibilityResult(
            status=InsuranceStatus.PRIOR_AUTH_REQUIRED,
            reason="authorization_required",
            in_network=in_network,
            patient_share=share,
        )
    return EligibilityResult(
        status=InsuranceStatus.COVERED, reason="active_coverage", in_network=in_network, patient_share=share
    )


class X12HttpProvider:
    """Posts a 270 to the clearinghouse over HTTPS and interprets its 271."""

    def __init__(
        self,
        url: str,
        provider_npi: str,
        *,
        organization: str = "",
        api_key: str | None = None,
        timeout: float = 20.0,
        ca_bundle: Path | None = None,
    ) -> None:
        self._url = url
        self._npi = provider_npi
        self._organization = organization
        headers = {"Authorization": api_key} if api_key else {}
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._http = httpx.AsyncClient(timeout=timeout, headers=headers, verify=verify)

    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        body = request_270(request, self._npi, self._organization, date.today())
        try:
            response = await self._http.post(self._url, json=body)
        except httpx.TimeoutException:
            raise PayerUnavailable("clearinghouse timed out") from None
        except httpx.HTTPError as error:
            # The exception's text can carry the URL and more; its kind is enough to act on.
            raise PayerUnavailable(f"clearinghouse unreachable ({type(error).__name__})") from None
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise PayerUnavailable(f"clearinghouse answered HTTP {status}")
        if status >= 400:
            log.error("clearinghouse refused the eligibility request", http_status=status, payer=request.payer_id)
            return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason=f"clearinghouse_http_{status}")
        try:
            parsed = response.json()
        except ValueError:
            return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="unreadable_271")
        result = interpret_271(parsed)
        log.info("eligibility answered", payer=request.payer_id, insurance=result.status.value, reason=result.reason)
        return result

    async def aclose(self) -> None:
        await self._http.aclose()
