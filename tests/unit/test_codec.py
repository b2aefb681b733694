"""Payload encryption: Temporal keeps only ciphertext, and old courses stay readable after rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from course.commands import RecordIntentions, RecordSupportPerson
from worker.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    Keyring,
    KeyringError,
    PayloadTampered,
    UnknownPayloadKey,
    generate_key,
    keyring_from_settings,
    parse_keyring,
)
from worker.converter import data_converter, plain_converter
from worker.settings import Settings

MARKER = "Ada-Lovelace-07700-900123"
KEY_A, KEY_B = os.urandom(32), os.urandom(32)


def codec(current: str, **keys: bytes) -> EncryptionCodec:
    return EncryptionCodec(Keyring(current, keys))


def goals_payload() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'{{"goals": "{MARKER}"}}'.encode())


def settings_with_keys(tmp_path: Path) -> Settings:
    entry = f"2026-a:{base64.b64encode(KEY_A).decode()}"
    return Settings(course_data_dir=tmp_path, payload_keys=entry, payload_key_id=None)


async def test_a_patients_goals_round_trip_and_nothing_readable_is_stored() -> None:
    original = goals_payload()
    [sealed] = await codec("2026-a", **{"2026-a": KEY_A}).encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"2026-a"
    assert set(sealed.metadata) == {"encoding", KEY_ID}  # the original metadata is inside the ciphertext
    assert MARKER.encode() not in sealed.SerializeToString() and b"json/plain" not in sealed.data
    assert await codec("2026-a", **{"2026-a": KEY_A}).decode([sealed]) == [original]


async def test_the_same_goals_encrypt_differently_each_time() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    first, second = await clinic.encode([goals_payload(), goals_payload()])
    assert first.data != second.data  # a fresh nonce per payload


async def test_after_rotation_new_payloads_use_the_new_key_and_old_ones_still_read() -> None:
    before = codec("2026-a", **{"2026-a": KEY_A})
    [old] = await before.encode([goals_payload()])
    after = codec("2026-b", **{"2026-a": KEY_A, "2026-b": KEY_B})
    [new] = await after.encode([goals_payload()])
    assert new.metadata[KEY_ID] == b"2026-b"
    assert await after.decode([old, new]) == [goals_payload(), goals_payload()]


async def test_a_retired_key_that_is_still_needed_is_named_in_the_error() -> None:
    [old] = await codec("2026-a", **{"2026-a": KEY_A}).encode([goals_payload()])
    with pytest.raises(UnknownPayloadKey) as missing:
        await codec("2026-b", **{"2026-b": KEY_B}).decode([old])
    assert "'2026-a'" in str(missing.value) and MARKER not in str(missing.value)


async def test_altered_ciphertext_is_refused_not_misread() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    [sealed] = await clinic.encode([goals_payload()])
    flipped = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    truncated = Payload(metadata=sealed.metadata, data=sealed.data[:20])
    for damaged in (flipped, truncated):
        with pytest.raises(PayloadTampered) as refused:
            await clinic.decode([damaged])
        assert "'2026-a'" in str(refused.value) and MARKER not in str(refused.value)


async def test_ciphertext_moved_under_another_key_id_is_refused() -> None:
    both = codec("2026-a", **{"2026-a": KEY_A, "2026-b": KEY_A})  # same bytes: only the id differs
    [sealed] = await both.encode([goals_payload()])
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID: b"2026-b"}, data=sealed.data)
    with pytest.raises(PayloadTampered):
        await both.decode([relabelled])


async def test_the_current_details_checklist_stays_readable_for_operations_staff() -> None:
    checklist = Payload(
        metadata={"encoding": b"json/protobuf", "messageType": b"temporal.api.sdk.v1.WorkflowMetadata"},
        data=b'{"currentDetails": "**preparation**"}',
    )
    other_proto = Payload(
        metadata={"encoding": b"json/protobuf", "messageType": b"temporal.api.common.v1.Payloads"}, data=b"{}"
    )
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    kept, sealed = await clinic.encode([checklist, other_proto])
    assert kept == checklist
    assert sealed.metadata["encoding"] == ENCODING


async def test_history_written_before_encryption_still_reads() -> None:
    plain = goals_payload()
    assert await codec("2026-a", **{"2026-a": KEY_A}).decode([plain]) == [plain]


def test_keys_come_from_configuration_and_several_need_a_current_id() -> None:
    a, b = base64.b64encode(KEY_A).decode(), base64.b64encode(KEY_B).decode()
    assert parse_keyring(f"2026-a:{a}", None) == Keyring("2026-a", {"2026-a": KEY_A})
    assert parse_keyring(f" 2026-a:{a} , 2026-b:{b} ", "2026-b").current_id == "2026-b"
    with pytest.raises(KeyringError, match="PAYLOAD_KEY_ID"):
        parse_keyring(f"2026-a:{a},2026-b:{b}", None)
    with pytest.raises(KeyringError, match="not one of"):
        parse_keyring(f"2026-a:{a}", "2026-z")
    with pytest.raises(KeyringError, match="32"):
        parse_keyring(f"short:{base64.b64encode(b'sixteen bytes!!!').decode()}", None)
    with pytest.raises(KeyringError, match="base64"):
        parse_keyring("2026-a:not base64!", None)


def test_without_configured_keys_a_private_local_keyring_is_created_once(tmp_path: Path) -> None:
    settings = Settings(course_data_dir=tmp_path / "data", payload_keys=None, payload_key_id=None)
    first = keyring_from_settings(settings)
    path = tmp_path / "data" / "payload-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring_from_settings(settings) == first
    assert [p.name for p in path.parent.iterdir()] == ["payload-keys.json"]  # no drafts left behind


def test_an_operator_gets_a_new_key_entry_ready_for_payload_keys(capsys: pytest.CaptureFixture[str]) -> None:
    generate_key()
    entry = capsys.readouterr().out.strip()
    keyring = parse_keyring(entry, None)
    assert len(keyring.keys[keyring.current_id]) == 32


async def test_a_pydantic_command_leaves_the_converter_encrypted(tmp_path: Path) -> None:
    command = RecordSupportPerson(name=MARKER, relationship="spouse", phone="07700 900123")
    assert MARKER.encode() in (await plain_converter().encode([command]))[0].SerializeToString()

    converter = data_converter(settings_with_keys(tmp_path))
    [payload] = await converter.encode([command])
    assert MARKER.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [RecordSupportPerson]) == [command]


async def test_a_rejection_message_travels_encrypted_and_reads_back_whole(tmp_path: Path) -> None:
    converter = data_converter(settings_with_keys(tmp_path))
    failure = Failure()
    rejection = ApplicationError(f"goals mention {MARKER}", "consent_outdated", type="RuleViolation")
    await converter.encode_failure(rejection, failure)
    assert MARKER.encode() not in failure.SerializeToString()
    assert b"consent_outdated" not in failure.SerializeToString()

    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert (decoded.type, decoded.message, decoded.details) == (
        "RuleViolation",
        rejection.message,
        ("consent_outdated",),
    )


def test_the_default_converter_reads_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAYLOAD_KEYS", f"env-key:{base64.b64encode(KEY_B).decode()}")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    converter = data_converter()
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert not (tmp_path / "payload-keys.json").exists()  # configured keys: no local file


async def test_intentions_recorded_under_one_converter_read_under_a_rotated_one(tmp_path: Path) -> None:
    a, b = base64.b64encode(KEY_A).decode(), base64.b64encode(KEY_B).decode()
    old = data_converter(Settings(course_data_dir=tmp_path, payload_keys=f"2026-a:{a}"))
    new = data_converter(
        Settings(course_data_dir=tmp_path, payload_keys=f"2026-a:{a},2026-b:{b}", payload_key_id="2026-b")
    )
    command = RecordIntentions(goals=MARKER)
    [payload] = await old.encode([command])
    assert await new.decode([payload], [RecordIntentions]) == [command]
