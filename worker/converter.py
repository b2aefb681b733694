"""The one data converter every client and worker uses.

Pydantic models cross Temporal as JSON, then the payload codec encrypts them, so the worker, the
CLI and the tests can never disagree about how payloads are encoded. Failures keep their message
and stack trace in encoded attributes, so the codec encrypts those too: a rule violation's text
(which may describe the patient's situation) never reaches Temporal in clear.

A payload the codec refused (unencrypted, made for another course, unknown key) reaches the
converter as a refusal, and reading a value from it raises `PayloadRefused`: for an update that is
before its validator, so the update is rejected and nothing is written.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    EncodingPayloadConverter,
    PayloadConverter,
)

from worker.codec import REFUSAL, REFUSED_ENCODING, EncryptionCodec, PayloadRefused, keyring_from_settings
from worker.settings import Settings


class RefusedPayloadConverter(EncodingPayloadConverter):
    """Reads the codec's refusals: raises their reason, never converts anything into one."""

    @property
    def encoding(self) -> str:
        return REFUSED_ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> NoReturn:
        raise PayloadRefused(payload.metadata.get(REFUSAL, b"payload refused by the codec").decode(errors="replace"))


class CoursePayloadConverter(PydanticPayloadConverter):
    def __init__(self) -> None:
        super().__init__()
        # Last: only a refusal carries this encoding, so nothing is ever encoded with it.
        self._set_converters(*self.converters.values(), RefusedPayloadConverter())


class CourseFailureConverter(DefaultFailureConverterWithEncodedAttributes):
    """Failures in encrypted attributes, except a refusal, whose reason stays readable.

    A refusal's text is the codec's own (the cause, key ids, workflow ids; never payload content),
    and the client it concerns is the one without the codec: encrypted, it would read only
    "Encoded failure" and never learn that it must encrypt.
    """

    _readable = DefaultFailureConverter()

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if isinstance(exception, PayloadRefused):
            self._readable.to_failure(exception, payload_converter, failure)
            failure.stack_trace = ""  # the worker's internals are nobody's business outside it
            return
        super().to_failure(exception, payload_converter, failure)


def data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic JSON, encrypted; keys from `settings` (by default read from the environment)."""
    keyring = keyring_from_settings(settings or Settings())
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=CoursePayloadConverter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=CourseFailureConverter,
    )


def plain_converter() -> DataConverter:
    """Pydantic JSON without encryption: for tests that read raw history to prove what is stored."""
    return pydantic_data_converter
