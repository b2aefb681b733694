"""AES-256-GCM payload encryption: Temporal stores and shows only ciphertext.

Every payload the service hands to Temporal (workflow input, update arguments, results, query
answers, failure details) is encrypted by `EncryptionCodec.encode`, except what is written for
operations staff: the current-details checklist (see CLEAR_MESSAGE_TYPES) and the summaries made by
`workflows.ui_text.for_operations`. The whole original
`Payload` message is encrypted, its metadata included, so not even the payload's type leaks. The
key id travels in clear metadata, so keys can rotate: new payloads use the current key, older ones
stay readable as long as their key remains in the keyring.

Keys come from `PAYLOAD_KEYS` (`id:base64key,...`) and `PAYLOAD_KEY_ID` (the current id). Without
`PAYLOAD_KEYS` a local keyring file is used (or created) under the data folder: fine for a laptop,
never for a clinic, where every worker and every CLI must share the same keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from workflows.ui_text import is_for_operations

if TYPE_CHECKING:
    from worker.settings import Settings

log = structlog.get_logger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per payload
TAG_BYTES = 16
KEYRING_FILE = "payload-keys.json"
# Left in clear on purpose: the SDK's answer to the UI's `__temporal_workflow_metadata` query, i.e.
# the handler names and the current-details checklist. The design keeps patient data out of that
# checklist, and operations staff, who need only the checklist, then need no decryption rights.
CLEAR_MESSAGE_TYPES = frozenset({b"temporal.api.sdk.v1.WorkflowMetadata"})
_KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class PayloadCodecError(Exception):
    """A payload could not be decrypted. Names the key id, never the payload's content."""


class UnknownPayloadKey(PayloadCodecError):
    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload encrypted with key id {key_id!r}, which is not in the keyring "
            "(add it back to PAYLOAD_KEYS: retired keys must stay until no history uses them)"
        )
        self.key_id = key_id


class PayloadTampered(PayloadCodecError):
    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload encrypted with key id {key_id!r} failed authentication: it was altered or "
            "truncated, or the key stored under that id is not the one it was encrypted with"
        )
        self.key_id = key_id


class KeyringError(ValueError):
    """The key configuration is unusable; the message says which setting to fix."""


@dataclass(frozen=True)
class Keyring:
    current_id: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not _KEY_ID_PATTERN.match(key_id):
                raise KeyringError(f"payload key id {key_id!r} must be 1-64 of A-Z a-z 0-9 . _ -")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"payload key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")
        if self.current_id not in self.keys:
            raise KeyringError(f"PAYLOAD_KEY_ID {self.current_id!r} is not one of the configured keys")


def _operations_text(payload: Payload) -> bool:
    """Summaries marked by `workflows.ui_text.for_operations`: written for staff, left readable."""
    if payload.metadata.get("encoding") != b"json/plain" or not payload.data.startswith(b'"'):
        return False
    try:
        return is_for_operations(json.loads(payload.data))
    except ValueError:
        return False


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: Keyring) -> None:
        self._current = keyring.current_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == b"json/protobuf" and (
            payload.metadata.get("messageType") in CLEAR_MESSAGE_TYPES
        ):
            return payload
        if _operations_text(payload):
            return payload
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        # The key id is authenticated data: moving ciphertext under another id fails to decrypt.
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on: readable as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownPayloadKey(key_id)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadTampered(key_id)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except (InvalidTag, DecodeError):
            raise PayloadTampered(key_id) from None


def parse_keyring(spec: str, current_id: str | None) -> Keyring:
    """`PAYLOAD_KEYS` (`id:base64key,...`) and `PAYLOAD_KEY_ID`; one key needs no current id."""
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise KeyringError("PAYLOAD_KEYS entries are `id:base64key`, separated by commas")
        if key_id in keys:
            raise KeyringError(f"payload key id {key_id!r} appears twice in PAYLOAD_KEYS")
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise KeyringError(f"payload key {key_id!r} is not valid base64") from None
    if not keys:
        raise KeyringError("PAYLOAD_KEYS is set but holds no keys")
    if current_id is None:
        if len(keys) > 1:
            raise KeyringError("PAYLOAD_KEYS holds several keys: set PAYLOAD_KEY_ID to the one new payloads use")
        current_id = next(iter(keys))
    return Keyring(current_id, keys)


def keyring_from_settings(settings: Settings) -> Keyring:
    if settings.payload_keys is not None:
        return parse_keyring(settings.payload_keys.get_secret_value(), settings.payload_key_id)
    return local_keyring(settings.course_data_dir / KEYRING_FILE, settings.payload_key_id)


def local_keyring(path: Path, current_id: str | None = None) -> Keyring:
    """The development keyring: `{"current": id, "keys": {id: base64}}`, created on first use."""

    def first_keyring() -> str:
        key_id, encoded = new_key_entry().split(":", 1)
        return json.dumps({"current": key_id, "keys": {key_id: encoded}}, indent=2) + "\n"

    text, created = private_file(path, first_keyring)
    if created:
        log.warning("created a local payload key; production must set PAYLOAD_KEYS", path=str(path))
    try:
        stored = json.loads(text)
        keys = {key_id: base64.b64decode(encoded, validate=True) for key_id, encoded in stored["keys"].items()}
        return Keyring(current_id or stored["current"], keys)
    except KeyringError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise KeyringError(f"{path} is not a usable keyring ({type(error).__name__}); fix or remove it") from None


def private_file(path: Path, create: Callable[[], str]) -> tuple[str, bool]:
    """Read a secret file, creating it (mode 0600) if absent; safe when processes race to create it.

    Returns the content and whether this call created the file.
    """
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(create())
    try:
        os.link(draft, path)  # atomic and never overwrites: the first process to get here wins
        created = True
    except FileExistsError:
        created = False
    finally:
        draft.unlink()
    return path.read_text(), created


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh `id:base64key` entry for PAYLOAD_KEYS."""
    key_id = key_id or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    Keyring(key_id, {key_id: bytes(KEY_BYTES)})  # validates the id
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def generate_key() -> None:
    """Print a new key entry for an operator to append to PAYLOAD_KEYS (`python -m worker.codec`)."""
    print(new_key_entry())


if __name__ == "__main__":
    generate_key()
