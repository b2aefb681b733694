"""The one data converter every client and worker uses.

Pydantic models cross Temporal as JSON, then the payload codec encrypts them, so the worker, the
CLI and the tests can never disagree about how payloads are encoded. Failures keep their message
and stack trace in encoded attributes, so the codec encrypts those too: a rule violation's text
(which may describe the patient's situation) never reaches Temporal in clear.
"""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from worker.codec import EncryptionCodec, keyring_from_settings
from worker.settings import Settings


def data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic JSON, encrypted; keys from `settings` (by default read from the environment)."""
    keyring = keyring_from_settings(settings or Settings())
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def plain_converter() -> DataConverter:
    """Pydantic JSON without encryption: for tests that read raw history to prove what is stored."""
    return pydantic_data_converter
