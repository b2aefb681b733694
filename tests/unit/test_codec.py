"""Payload encryption: Temporal keeps only ciphertext, and old courses stay readable after rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from course.commands import RecordIntentions, RecordSupportPerson
from worker.codec import (
    BOUND_ENCODING,
    ENCODING,
    KEY_ID,
    REFUSED_ENCODING,
    WORKFLOW_ID,
    EncryptionCodec,
    Keyring,
    KeyringError,
    PayloadForAnotherWorkflow,
    PayloadRefused,
    PayloadTampered,
    PlaintextRefused,
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


def course(name: str) -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace="clinic", workflow_id=f"course-{name}")


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
        codec("2026-b", **{"2026-b": KEY_B}).unseal(old)
    assert "'2026-a'" in str(missing.value) and MARKER not in str(missing.value)


async def test_altered_ciphertext_is_refused_not_misread() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    [sealed] = await clinic.encode([goals_payload()])
    flipped = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    truncated = Payload(metadata=sealed.metadata, data=sealed.data[:20])
    for damaged in (flipped, truncated):
        with pytest.raises(PayloadTampered) as refused:
            clinic.unseal(damaged)
        assert "'2026-a'" in str(refused.value) and MARKER not in str(refused.value)


async def test_ciphertext_moved_under_another_key_id_is_refused() -> None:
    both = codec("2026-a", **{"2026-a": KEY_A, "2026-b": KEY_A})  # same bytes: only the id differs
    [sealed] = await both.encode([goals_payload()])
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID: b"2026-b"}, data=sealed.data)
    with pytest.raises(PayloadTampered):
        both.unseal(relabelled)


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


async def test_the_checklist_and_operations_summaries_read_back_unencrypted() -> None:
    checklist = Payload(
        metadata={"encoding": b"json/protobuf", "messageType": b"temporal.api.sdk.v1.WorkflowMetadata"},
        data=b'{"currentDetails": "**preparation**"}',
    )
    summary = Payload(metadata={"encoding": b"json/plain"}, data=b'"\xe2\x81\xa3appointment reminder"')
    clinic = codec("2026-a", **{"2026-a": KEY_A}).with_context(course("A"))
    assert await clinic.decode([checklist, summary]) == [checklist, summary]


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


# --- bound to the course, and nothing unencrypted gets in --------------------------------------


async def test_a_courses_payload_is_bound_to_that_course_and_reads_back_there() -> None:
    in_course_a = codec("2026-a", **{"2026-a": KEY_A}).with_context(course("A"))
    [sealed] = await in_course_a.encode([goals_payload()])
    assert sealed.metadata["encoding"] == BOUND_ENCODING
    assert (sealed.metadata[KEY_ID], sealed.metadata[WORKFLOW_ID]) == (b"2026-a", b"course-A")
    assert MARKER.encode() not in sealed.SerializeToString()
    assert await in_course_a.decode([sealed]) == [goals_payload()]


async def test_an_activity_of_the_course_reads_its_payloads_under_the_same_binding() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    activity = ActivitySerializationContext(
        namespace="clinic",
        activity_id="1",
        activity_type="append_events",
        activity_task_queue="courses",
        workflow_id="course-A",
        workflow_type="TreatmentCourseWorkflow",
        is_local=False,
    )
    [sealed] = await clinic.with_context(course("A")).encode([goals_payload()])
    assert await clinic.with_context(activity).decode([sealed]) == [goals_payload()]


async def test_a_payload_copied_into_another_course_is_refused_there() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    [sealed] = await clinic.with_context(course("A")).encode([goals_payload()])
    with pytest.raises(PayloadForAnotherWorkflow) as refused:
        clinic.with_context(course("B")).unseal(sealed)
    assert "'course-A'" in str(refused.value) and "'course-B'" in str(refused.value)
    assert MARKER not in str(refused.value)

    # Relabelling the clear hint, or dropping it, does not help: the tag covers the id read for.
    for metadata in (
        {**sealed.metadata, WORKFLOW_ID: b"course-B"},
        {k: v for k, v in sealed.metadata.items() if k != WORKFLOW_ID},
    ):
        with pytest.raises(PayloadTampered):
            clinic.with_context(course("B")).unseal(Payload(metadata=metadata, data=sealed.data))


async def test_without_a_workflow_id_a_bound_payload_reads_under_the_id_it_names() -> None:
    """The codec server and audits of raw history have no context; the tag still proves the id."""
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    [sealed] = await clinic.with_context(course("A")).encode([goals_payload()])
    assert clinic.unseal(sealed) == goals_payload()
    forged = Payload(metadata={**sealed.metadata, WORKFLOW_ID: b"course-B"}, data=sealed.data)
    with pytest.raises(PayloadTampered):
        clinic.unseal(forged)


async def test_ciphertext_written_before_the_binding_still_reads_in_its_course() -> None:
    """Built as the codec wrote it before workflow binding: the key id is the only associated data."""
    nonce = os.urandom(12)
    sealed = AESGCM(KEY_A).encrypt(nonce, goals_payload().SerializeToString(), b"2026-a")
    old = Payload(metadata={"encoding": b"binary/encrypted", KEY_ID: b"2026-a"}, data=nonce + sealed)
    clinic = codec("2026-a", **{"2026-a": KEY_A})
    assert await clinic.with_context(course("A")).decode([old]) == [goals_payload()]
    assert await clinic.decode([old]) == [goals_payload()]


async def test_a_payload_sent_without_the_codec_is_refused_naming_the_cause() -> None:
    clinic = codec("2026-a", **{"2026-a": KEY_A}).with_context(course("A"))
    with pytest.raises(PlaintextRefused, match="not encrypted: the client sending it is not using the payload codec"):
        clinic.unseal(goals_payload())
    # To the SDK it comes back as a refusal, so a worker rejects the update instead of failing its task.
    [refusal] = await clinic.decode([goals_payload()])
    assert refusal.metadata["encoding"] == REFUSED_ENCODING
    assert MARKER.encode() not in refusal.SerializeToString()


async def test_reading_a_refused_command_raises_the_cause_and_never_its_content(tmp_path: Path) -> None:
    converter = data_converter(settings_with_keys(tmp_path)).with_context(course("A"))
    [plain] = await plain_converter().encode(
        [RecordSupportPerson(name=MARKER, relationship="spouse", phone="07700 900123")]
    )
    with pytest.raises(PayloadRefused, match="payload is not encrypted") as refused:
        await converter.decode([plain], [RecordSupportPerson])
    assert MARKER not in str(refused.value)


async def test_a_rejection_in_a_course_travels_bound_and_reads_back_there(tmp_path: Path) -> None:
    converter = data_converter(settings_with_keys(tmp_path)).with_context(course("A"))
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"goals mention {MARKER}", type="RuleViolation"), failure)
    assert failure.encoded_attributes.metadata["encoding"] == BOUND_ENCODING
    assert MARKER.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.message == f"goals mention {MARKER}"


async def test_a_refusal_reaches_the_client_that_is_not_encrypting_in_clear(tmp_path: Path) -> None:
    converter = data_converter(settings_with_keys(tmp_path)).with_context(course("A"))
    failure = Failure()
    await converter.encode_failure(PayloadRefused(str(PlaintextRefused())), failure)
    assert "not using the payload codec" in failure.message and not failure.stack_trace
    assert not failure.HasField("encoded_attributes")


async def test_a_scheduled_run_reads_the_result_its_previous_run_left_and_no_other_schedules() -> None:
    """A Schedule hands each run its previous run's result, sealed for the previous run's id."""
    clinic = codec("2026-a", **{"2026-a": KEY_A})

    def run(workflow_id: str) -> WorkflowSerializationContext:
        return WorkflowSerializationContext(namespace="clinic", workflow_id=workflow_id)

    [sealed] = await clinic.with_context(run("clinic-reconcile-2026-12-02T07:00:00Z")).encode([goals_payload()])
    assert sealed.metadata[WORKFLOW_ID] == b"clinic-reconcile"
    assert clinic.with_context(run("clinic-reconcile-2026-12-02T08:00:00Z")).unseal(sealed) == goals_payload()
    with pytest.raises(PayloadForAnotherWorkflow):
        clinic.with_context(run("clinic-daily-huddle-2026-12-02T08:00:00Z")).unseal(sealed)
    with pytest.raises(PayloadForAnotherWorkflow):
        clinic.with_context(course("clinic-reconcile-2026-12-02T08:00:00Z")).unseal(sealed)  # course-clinic-...
