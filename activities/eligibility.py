"""Insurance eligibility: providers chosen by configuration, and the activity.

`ELIGIBILITY_PROVIDER`: `self_pay` (no payer is asked: not covered), `manual` (staff verify by
phone; the course waits for a financial-clearance or prior-authorization step), `x12_http` (a
clearinghouse, activities/x12.py), and `covered` for demos and tests.
"""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ports import (
    UNRECOGNISED_REASON,
    EligibilityProvider,
    EligibilityRequest,
    EligibilityResult,
    PayerUnavailable,
)
from course.commands import InsuranceStatus

log = structlog.get_logger(__name__)
PROVIDERS = ("self_pay", "manual", "x12_http", "covered")


class SelfPayProvider:
    """No payer is asked: every course is treated as not covered (the patient pays)."""

    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        return EligibilityResult(status=InsuranceStatus.NOT_COVERED, reason="self_pay")


class ManualProvider:
    """Staff verify by phone; the course waits for a financial-clearance or prior-authorization step."""

    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="manual_verification")


class FixedProvider:
    """Answers with one status: for tests and demos that need a covered patient."""

    def __init__(self, status: InsuranceStatus) -> None:
        self._status = status

    async def check(self, request: EligibilityRequest) -> EligibilityResult:
        return EligibilityResult(status=self._status, reason="fixed")


def provider_named(name: str) -> EligibilityProvider:
    """The providers that need no configuration; `x12_http` is built by worker.main from settings."""
    providers: dict[str, EligibilityProvider] = {
        "self_pay": SelfPayProvider(),
        "manual": ManualProvider(),
        "covered": FixedProvider(InsuranceStatus.COVERED),
    }
    if name not in providers:
        raise ValueError(f"unknown ELIGIBILITY_PROVIDER {name!r}; use one of {', '.join(PROVIDERS)}")
    return providers[name]


class EligibilityActivities:
    def __init__(self, provider: EligibilityProvider) -> None:
        self._provider = provider

    @activity.defn
    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        if request.self_pay or request.payer_id is None:
            return EligibilityResult(status=InsuranceStatus.NOT_COVERED, reason="self_pay")
        try:
            return await self._provider.check(request)
        except ValidationError as invalid:
            # A provider built an answer the port refuses (a reason that is not a code): staff
            # verify by hand rather than the activity retrying the same answer for ten minutes.
            # The fields only, never the values: the answer may carry the payer's text.
            log.error("eligibility answer refused", fields=[".".join(map(str, e["loc"])) for e in invalid.errors()])
            return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason=UNRECOGNISED_REASON)
        except PayerUnavailable as unavailable:
            # Retryable: Temporal retries with backoff until the workflow's schedule-to-close, then
            # the workflow records `unknown` (payer_unreachable). The text names the failure only.
            raise ApplicationError(str(unavailable), type="PayerUnavailable") from None
