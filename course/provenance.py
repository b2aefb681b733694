"""The proof of who took a step: the edge's signature over the command, kept with its events.

Only the model lives here (the domain has no cryptography); `trust.signing` makes and checks it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SIGNATURE_VERSION = 1
KEY_ID_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"


class BreakGlassStep(StrEnum):
    """Why an operator recorded a step with their own break-glass key instead of through the API.
    Codes only: the reason is kept in the signature, in events kept forever."""

    API_UNAVAILABLE = "api_unavailable"  # the API is down and care cannot wait for it
    EMERGENCY_CARE = "emergency_care"  # a clinician at the bedside cannot sign in
    DATA_CORRECTION = "data_correction"  # clinical governance corrects the record


class CommandSignature(BaseModel):
    """Travels beside a step (StepRequest) and is kept in its events' metadata."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # rolling deploys: see course/messages.py

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    course_id: str
    update_id: str
    issued_at: AwareDatetime
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # A break-glass signature (an operator's own key, in an emergency): its reason code
    # (BreakGlassStep). Signed over, and checked against the break-glass keys only.
    break_glass: str | None = Field(None, pattern=r"^[a-z0-9_]{1,64}$")
    value: str  # base64 of the 64-byte Ed25519 signature
    version: int = SIGNATURE_VERSION
