"""The clearinghouse client against a real HTTP server on 127.0.0.1 serving recorded-shape 271s.

Given a patient's payer and member id, when the clinic asks the clearinghouse, then the course
learns covered / not covered / prior authorization required / unknown, and what the patient pays.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.eligibility import EligibilityActivities
from activities.ports import EligibilityRequest, PayerUnavailable
from activities.x12 import X12HttpProvider, control_number, interpret_271
from course.commands import InsuranceStatus, PatientShare, RecordEligibility
from tests.clearinghouse import Clearinghouse, Reply, running_clearinghouse
from tests.contract import x12_recorded as recorded
from tests.contract.x12_recorded import MEMBER
from tests.tls import local_certificate

NPI = "1999999984"
COURSE = "0b6f3c3e-8c1b-4c7e-9d7e-2f4b8a1c5d90"


@pytest.fixture
def clearinghouse() -> Iterator[Clearinghouse]:
    with running_clearinghouse() as house:
        yield house


def request(member: str = MEMBER) -> EligibilityRequest:
    return EligibilityRequest(course_id=COURSE, payer_id="87726", member_ref=member, self_pay=False)


async def ask(
    house: Clearinghouse, *replies: Reply, client_timeout: float = 2.0
) -> tuple[object, list[dict[str, object]]]:
    """Run one check; returns the result (or the exception) and what was logged."""
    house.script(MEMBER, *replies)
    provider = X12HttpProvider(
        house.url, NPI, organization="Calm Harbor Clinic", api_key="test-key", timeout=client_timeout
    )
    outcome: object
    with capture_logs() as logs:
        try:
            outcome = await provider.check(request())
        except PayerUnavailable as error:
            outcome = error
        finally:
            await provider.aclose()
    # Whatever happened, the member id is nowhere staff or Temporal could read it.
    assert MEMBER not in repr(outcome)
    assert MEMBER not in repr(logs)
    return outcome, logs


async def test_an_active_plan_with_a_copay_is_covered_with_the_patients_in_network_share(
    clearinghouse: Clearinghouse,
) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.ACTIVE_WITH_COPAY))

    assert result.status is InsuranceStatus.COVERED  # type: ignore[attr-defined]
    assert result.reason == "active_coverage"  # type: ignore[attr-defined]
    assert result.in_network is True  # type: ignore[attr-defined]
    # In-network figures, the individual's remaining deductible (not the family's, not the annual).
    assert result.patient_share == PatientShare(  # type: ignore[attr-defined]
        copay=Decimal("30"),
        coinsurance_rate=Decimal("0.2"),
        deductible_remaining=Decimal("250.00"),
        out_of_pocket_remaining=Decimal("2100"),
    )
    # The 270: payer, the clinic's NPI, the member, service type MH, a stable control number.
    sent = clearinghouse.requests[0]
    assert sent["tradingPartnerServiceId"] == "87726"
    assert sent["provider"] == {"npi": NPI, "organizationName": "Calm Harbor Clinic"}
    assert sent["subscriber"] == {"memberId": MEMBER}
    assert sent["encounter"]["serviceTypeCodes"] == ["MH"]  # type: ignore[index]
    assert sent["controlNumber"] == control_number(COURSE) and len(control_number(COURSE)) == 9
    assert clearinghouse.headers[0]["Authorization"] == "test-key"


async def test_an_inactive_plan_is_not_covered(clearinghouse: Clearinghouse) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.INACTIVE))
    assert (result.status, result.reason) == (InsuranceStatus.NOT_COVERED, "inactive_coverage")  # type: ignore[attr-defined]


async def test_mental_health_excluded_from_an_active_plan_is_not_covered(clearinghouse: Clearinghouse) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.NON_COVERED))
    assert (result.status, result.reason) == (InsuranceStatus.NOT_COVERED, "non_covered")  # type: ignore[attr-defined]


async def test_an_authorization_flag_on_the_mental_health_benefit_needs_prior_authorization(
    clearinghouse: Clearinghouse,
) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.AUTH_REQUIRED))
    assert result.status is InsuranceStatus.PRIOR_AUTH_REQUIRED  # type: ignore[attr-defined]
    assert result.patient_share.copay == Decimal("40")  # type: ignore[attr-defined]


async def test_a_payer_rejection_is_unknown_at_once_with_the_reason_for_staff(clearinghouse: Clearinghouse) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.INVALID_MEMBER))

    assert result.status is InsuranceStatus.UNKNOWN  # type: ignore[attr-defined]
    assert result.reason == "aaa_72_invalid_member_id"  # type: ignore[attr-defined]
    assert len(clearinghouse.requests) == 1  # not retried: asking again cannot help
    # The reason travels into the course's events as a reason code.
    RecordEligibility(status=result.status, reason=result.reason)  # type: ignore[attr-defined]


async def test_benefits_carved_out_to_another_plan_are_unknown(clearinghouse: Clearinghouse) -> None:
    result, _ = await ask(clearinghouse, Reply(200, recorded.CARVED_OUT))
    assert (result.status, result.reason) == (InsuranceStatus.UNKNOWN, "benefits_carved_out")  # type: ignore[attr-defined]


async def test_a_payer_that_cannot_respond_now_is_retried(clearinghouse: Clearinghouse) -> None:
    outcome, _ = await ask(clearinghouse, Reply(200, recorded.PAYER_DOWN))
    assert isinstance(outcome, PayerUnavailable) and "AAA 42" in str(outcome)


async def test_a_503_is_retried_and_the_next_answer_counts(clearinghouse: Clearinghouse) -> None:
    clearinghouse.script(
        MEMBER, Reply(503, {"message": "upstream payer timeout"}), Reply(200, recorded.ACTIVE_WITH_COPAY)
    )
    provider = X12HttpProvider(clearinghouse.url, NPI, timeout=2.0)
    activities = EligibilityActivities(provider)
    env = ActivityEnvironment()
    try:
        with pytest.raises(ApplicationError) as first:
            await env.run(activities.check_eligibility, request())
        # Retryable (Temporal backs off and tries again), and says nothing about the member.
        assert not first.value.non_retryable and first.value.type == "PayerUnavailable"
        assert first.value.message == "clearinghouse answered HTTP 503"
        second = await env.run(activities.check_eligibility, request())
    finally:
        await provider.aclose()
    assert second.status is InsuranceStatus.COVERED
    assert len(clearinghouse.requests) == 2


async def test_a_clearinghouse_that_does_not_answer_in_time_is_retried(clearinghouse: Clearinghouse) -> None:
    outcome, _ = await ask(clearinghouse, Reply(200, recorded.ACTIVE_WITH_COPAY, delay=1.5), client_timeout=0.3)
    assert isinstance(outcome, PayerUnavailable) and str(outcome) == "clearinghouse timed out"


async def test_a_clearinghouse_that_is_down_is_retried() -> None:
    with running_clearinghouse() as house:
        url = house.url
    provider = X12HttpProvider(url, NPI, timeout=1.0)  # nothing listens there any more
    try:
        with pytest.raises(PayerUnavailable, match="unreachable"):
            await provider.check(request())
    finally:
        await provider.aclose()


async def test_a_refused_request_or_an_unreadable_answer_is_unknown(clearinghouse: Clearinghouse) -> None:
    refused, logs = await ask(clearinghouse, Reply(401, {"message": "bad key"}))
    assert (refused.status, refused.reason) == (InsuranceStatus.UNKNOWN, "clearinghouse_http_401")  # type: ignore[attr-defined]
    assert logs[0]["log_level"] == "error"
    garbled, _ = await ask(clearinghouse, Reply(200, b"<html>gateway</html>"))
    assert garbled.reason == "unreadable_271"  # type: ignore[attr-defined]
    assert interpret_271({"benefitsInformation": [{"name": "no code"}]}).reason == "unreadable_271"


async def test_the_clearinghouse_is_reached_over_verified_https(tmp_path: Path) -> None:
    certificate = local_certificate(tmp_path)
    with running_clearinghouse(tls=certificate.server_context()) as house:
        house.script(MEMBER, Reply(200, recorded.ACTIVE_WITH_COPAY))
        trusted = X12HttpProvider(house.url, NPI, ca_bundle=certificate.cert, timeout=2.0)
        untrusted = X12HttpProvider(house.url, NPI, timeout=2.0)
        try:
            assert (await trusted.check(request())).status is InsuranceStatus.COVERED
            with pytest.raises(PayerUnavailable):
                await untrusted.check(request())  # an unknown certificate is never trusted
        finally:
            await trusted.aclose()
            await untrusted.aclose()


def test_logging_through_the_configured_chain_never_shows_the_member() -> None:
    # The activity logs with structlog; the member id is never passed to it, by name or value.
    with capture_logs() as logs:
        structlog.get_logger("activities.x12").info("eligibility answered", payer="87726", insurance="covered")
    assert MEMBER not in repr(logs)
