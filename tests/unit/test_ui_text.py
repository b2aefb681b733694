"""Summaries written for operations stay readable in the UI; every other string is encrypted."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter

from worker.codec import ENCODING, EncryptionCodec, Keyring
from workflows.ui_text import for_operations


def _codec() -> EncryptionCodec:
    return EncryptionCodec(Keyring("k1", {"k1": bytes(range(32))}))


async def test_operations_text_passes_in_clear_and_round_trips() -> None:
    payload = pydantic_data_converter.payload_converter.to_payloads([for_operations("reminder: session 3 tomorrow")])
    [encoded] = await _codec().encode(payload)
    assert encoded.metadata["encoding"] == b"json/plain"
    assert b"session 3 tomorrow" in encoded.data
    [decoded] = await _codec().decode([encoded])
    assert decoded == payload[0]


async def test_any_other_string_is_encrypted() -> None:
    for text in ("Sam Support, 555-0100", '"\\u2063 imitation', "\u2064 not the mark"):
        payload = pydantic_data_converter.payload_converter.to_payloads([text])
        [encoded] = await _codec().encode(payload)
        assert encoded.metadata["encoding"] == ENCODING
        assert text.encode() not in encoded.data
