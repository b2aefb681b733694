"""Signed steps: what the edge signs is exactly what a worker accepts, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trust.signing import KeyRing, SignatureRefused, Signer, payload_digest

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
EDGE = Signer.generate("api-2026-12")
RING = KeyRing.from_setting(EDGE.public_setting())
PAYLOAD = {"step": "consent", "form_version": "2026-01", "signed_at": "2026-12-01T10:00:00+00:00"}


def _signed(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "course_id": "c-1",
        "update_id": "consent-abc",
        "actor_id": "rn-bell",
        "role": "nurse",
        "step": "consent",
        "payload": PAYLOAD,
        "now": NOW,
    }
    return fields | changes


def _check(signature: Any, **changes: Any) -> None:
    fields = _signed(**changes)
    fields.pop("now")
    RING.check(
        signature,
        now=changes.get("checked_at", NOW),
        window=WINDOW,
        **{k: v for k, v in fields.items() if k != "checked_at"},
    )


def test_a_signed_step_verifies_and_settings_round_trip() -> None:
    signature = EDGE.sign(**_signed())
    _check(signature)
    again = Signer.from_setting(EDGE.private_setting())
    assert again.public_setting() == EDGE.public_setting()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"course_id": "c-2"}, "signed_for_another_course"),
        ({"update_id": "consent-other"}, "signed_for_another_request"),
        ({"payload": {**PAYLOAD, "form_version": "2025-01"}}, "payload_altered"),
        ({"actor_id": "dr-ames"}, "bad_signature"),
        ({"role": "prescriber"}, "bad_signature"),
        ({"step": "intentions"}, "bad_signature"),
        ({"checked_at": NOW + timedelta(minutes=10)}, "signature_expired"),
        ({"checked_at": NOW - timedelta(minutes=10)}, "signature_expired"),
    ],
)
def test_anything_but_the_signed_command_is_refused(change: dict[str, Any], code: str) -> None:
    signature = EDGE.sign(**_signed())
    with pytest.raises(SignatureRefused) as refused:
        _check(signature, **change)
    assert refused.value.code == code


def test_unsigned_unknown_key_and_forged_value_are_refused() -> None:
    with pytest.raises(SignatureRefused) as unsigned:
        _check(None)
    assert unsigned.value.code == "unsigned"
    stranger = Signer.generate("api-2026-12")  # same id, another key: a forgery
    with pytest.raises(SignatureRefused) as forged:
        _check(stranger.sign(**_signed()))
    assert forged.value.code == "bad_signature"
    with pytest.raises(SignatureRefused) as unknown:
        _check(Signer.generate("someone-else").sign(**_signed()))
    assert unknown.value.code == "unknown_key"


def test_keys_rotate_the_way_payload_keys_do() -> None:
    old, new = Signer.generate("api-1"), Signer.generate("api-2")
    ring = KeyRing.from_setting(f"{old.public_setting()},{new.public_setting()}")
    for signer in (old, new):
        fields = _signed()
        fields.pop("now")
        ring.check(signer.sign(**_signed()), now=NOW, window=WINDOW, **fields)
    assert ring.key_ids == ["api-1", "api-2"]


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=6))
def test_the_payload_digest_ignores_key_order(payload: dict[str, Any]) -> None:
    assert payload_digest(payload) == payload_digest(dict(reversed(list(payload.items()))))


OPERATOR = Signer.generate("ops-dunn")
GUARDED = RING.with_break_glass(KeyRing.from_setting(OPERATOR.public_setting(), "BREAK_GLASS_VERIFY_KEYS"))


def _check_with(ring: KeyRing, signature: Any) -> None:
    fields = _signed()
    fields.pop("now")
    ring.check(signature, now=NOW, window=WINDOW, **fields)


def test_an_operators_break_glass_key_signs_break_glass_steps_and_nothing_else() -> None:
    """Given the clinic's workers hold the API's key and the operators' break-glass keys apart,
    a step an operator signs in an emergency is accepted with its reason; the same key on an
    ordinary step, or the API's key on a break-glass one, is refused with its own code."""
    _check_with(GUARDED, OPERATOR.sign(**_signed(), break_glass="api_unavailable"))
    _check_with(GUARDED, EDGE.sign(**_signed()))  # ordinary steps as before

    with pytest.raises(SignatureRefused) as ordinary:
        _check_with(GUARDED, OPERATOR.sign(**_signed()))
    assert ordinary.value.code == "break_glass_key_misused"
    with pytest.raises(SignatureRefused) as edge_key:
        _check_with(GUARDED, EDGE.sign(**_signed(), break_glass="api_unavailable"))
    assert edge_key.value.code == "not_a_break_glass_key"
    with pytest.raises(SignatureRefused) as unknown_reason:
        _check_with(GUARDED, OPERATOR.sign(**_signed(), break_glass="because"))
    assert unknown_reason.value.code == "break_glass_reason_unknown"
    # Workers without break-glass keys (none configured) accept no break-glass step at all.
    with pytest.raises(SignatureRefused) as none_configured:
        _check_with(RING, OPERATOR.sign(**_signed(), break_glass="emergency_care"))
    assert none_configured.value.code == "not_a_break_glass_key"


def test_the_same_key_id_in_both_rings_does_not_let_one_key_stand_for_the_other() -> None:
    twin = Signer.generate(EDGE.key_id)  # a break-glass key that happens to share the API key's id
    ring = RING.with_break_glass(KeyRing.from_setting(twin.public_setting()))
    with pytest.raises(SignatureRefused) as ordinary:
        _check_with(ring, twin.sign(**_signed()))
    assert ordinary.value.code == "bad_signature"
    with pytest.raises(SignatureRefused) as glass:
        _check_with(ring, EDGE.sign(**_signed(), break_glass="data_correction"))
    assert glass.value.code == "bad_signature"
    _check_with(ring, twin.sign(**_signed(), break_glass="data_correction"))
