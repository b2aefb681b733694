"""Insurance eligibility: providers chosen by configuration, and the activity."""

from __future__ import annotations

from temporalio import activity

from activities.ports import EligibilityProvider, EligibilityRequest, EligibilityResult
from course.commands import InsuranceStatus


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
    providers: dict[str, EligibilityProvider] = {
        "self_pay": SelfPayProvider(),
        "manual": ManualProvider(),
        "covered": FixedProvider(InsuranceStatus.COVERED),
    }
    if name not in providers:
        raise ValueError(f"unknown ELIGIBILITY_PROVIDER {name!r}; use one of {sorted(providers)}")
    return providers[name]


class EligibilityActivities:
    def __init__(self, provider: EligibilityProvider) -> None:
        self._provider = provider

    @activity.defn
    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        if request.self_pay or request.payer_id is None:
            return EligibilityResult(status=InsuranceStatus.NOT_COVERED, reason="self_pay")
        return await self._provider.check(request)
