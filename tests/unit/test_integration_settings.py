"""The worker builds its eligibility provider and notification channel from configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.channels import ConsoleChannel, SmtpChannel
from activities.eligibility import ManualProvider, SelfPayProvider
from activities.x12 import X12HttpProvider
from worker.main import MisconfiguredIntegration, clinic_from, eligibility_provider, notification_channel
from worker.settings import Settings


def test_the_default_is_manual_verification_and_console_reminders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELIGIBILITY_PROVIDER", raising=False)
    monkeypatch.delenv("NOTIFY_CHANNEL", raising=False)
    settings = Settings()
    assert isinstance(eligibility_provider(settings), ManualProvider)
    assert isinstance(notification_channel(settings), ConsoleChannel)
    assert isinstance(eligibility_provider(Settings(eligibility_provider="self_pay")), SelfPayProvider)


async def test_a_clearinghouse_needs_its_url_and_the_clinics_npi() -> None:
    with pytest.raises(MisconfiguredIntegration, match="ELIGIBILITY_URL"):
        eligibility_provider(Settings(eligibility_provider="x12_http"))
    provider = eligibility_provider(
        Settings(eligibility_provider="x12_http", eligibility_url="https://ch.example/v3", eligibility_provider_npi="1")
    )
    assert isinstance(provider, X12HttpProvider)
    await provider.aclose()


def test_an_unknown_provider_or_channel_is_refused_at_start() -> None:
    with pytest.raises(MisconfiguredIntegration, match="x12_http"):
        eligibility_provider(Settings(eligibility_provider="carrier_pigeon"))
    with pytest.raises(ValidationError):
        Settings(notify_channel="sms")  # type: ignore[arg-type]


def test_smtp_is_chosen_by_configuration_and_message_ids_use_the_senders_domain() -> None:
    settings = Settings(notify_channel="smtp", smtp_from="reminders@calm.example", smtp_tls="implicit", smtp_port=465)
    assert isinstance(notification_channel(settings), SmtpChannel)
    assert clinic_from(settings).mail_domain == "calm.example"
