"""AES-256-GCM payload encryption: Temporal stores and shows only ciphertext.

Every payload the service hands to Temporal (workflow input, update arguments, results, query
answers, failure details) is encrypted by `EncryptionCodec.encode`, except what is written for
operations staff: the current-details checklist (see CLEAR_MESSAGE_TYPES) and the summaries made by
`workflows.ui_text.for_operations`. The whole original
`Payload` message is encrypted, its metadata included, so not even the payload's type leaks. The
key id travels in clear metadata, so keys can rotate: new payloads use the current key, older ones
stay readable as long as their key remains in the keyring.

Each ciphertext is also bound to the workflow (the course) it was made for: the SDK hands the codec
a serialization context naming the workflow id, and that id is authenticated data, so an encrypted
command copied from one course's history into another does not decrypt there. With keys configured,
a payload that arrives unencrypted is refused: only a client that skips the codec sends one.

Keys come from `PAYLOAD_KEYS` (`id:base64key,...`) and `PAYLOAD_KEY_ID` (the current id). Without
`PAYLOAD_KEYS` a local keyring file is used (or created) under the data folder: fine for a laptop,
never for a clinic, where every worker and every CLI must share the same keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from workflows.ui_text import is_for_operations

if TYPE_CHECKING:
    from worker.settings import Settings

log = structlog.get_logger(__name__)

# Bound to a workflow: the authenticated data is the key id and the workflow id. Written whenever
# the SDK gives a workflow id (every workflow and activity payload of a course).
BOUND_ENCODING = b"binary/encrypted-for-workflow"
# Bound to the key id only: every history written before the binding, and what context-free callers
# (the codec server's /encode for the UI) write today. Still decrypts, so old courses stay readable.
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# The workflow id a bound payload was made for, in clear: it is an opaque `course-<uuid>`, and it
# lets callers without a serialization context (the codec server, audits of raw history) decrypt.
# Only a hint: a worker authenticates the id its context gives, never this one.
WORKFLOW_ID = "encryption-workflow-id"
# What `decode` hands back in place of a payload it refused; the converter raises `PayloadRefused`
# when a value is read from it (see `EncryptionCodec.decode` for why not raise in the codec).
REFUSED_ENCODING = b"binary/refused"
REFUSAL = "refusal"
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
            "truncated, made for another course, or the key stored under that id is not the one it "
            "was encrypted with"
        )
        self.key_id = key_id


class PayloadForAnotherWorkflow(PayloadCodecError):
    def __init__(self, key_id: str, made_for: str, read_in: str) -> None:
        super().__init__(
            f"payload encrypted with key id {key_id!r} was made for workflow {made_for!r}, not for "
            f"{read_in!r}: it was copied from another course's history, or altered"
        )
        self.key_id = key_id


class PlaintextRefused(PayloadCodecError):
    def __init__(self) -> None:
        super().__init__(
            "payload is not encrypted: the client sending it is not using the payload codec "
            "(connect with worker.converter.data_converter and the clinic's PAYLOAD_KEYS)"
        )


class PayloadRefused(PayloadCodecError):
    """Raised where a refused payload is read as a value; carries the codec's reason only."""


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


def _left_in_clear(payload: Payload) -> bool:
    """What `encode` leaves readable on purpose, so `decode` must accept it unencrypted too."""
    if payload.metadata.get("encoding") == b"json/protobuf" and (
        payload.metadata.get("messageType") in CLEAR_MESSAGE_TYPES
    ):
        return True
    return _operations_text(payload)


def _bound_data(key_id: bytes, workflow_id: str) -> bytes:
    # Key ids hold no NUL (see _KEY_ID_PATTERN), so the split is unambiguous; the label keeps this
    # distinct from the unbound form, whose authenticated data is the key id alone.
    return b"workflow\0" + key_id + b"\0" + workflow_id.encode()


# A Schedule names each run `<schedule id>-<scheduled time>` and hands it the previous run's result
# (its last completion result), sealed for the previous run: the clinic's scheduled runs
# (workflows/clinic.py, no patient data) are bound to their Schedule's id, so each reads the last.
_SCHEDULED_RUN = re.compile(r"^(clinic-[a-z-]+)-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def binding_of(workflow_id: str) -> str:
    """The id a payload of this workflow is bound to: its own, or a scheduled run's Schedule id."""
    scheduled = _SCHEDULED_RUN.match(workflow_id)
    return scheduled.group(1) if scheduled else workflow_id


def refused(error: PayloadCodecError) -> Payload:
    return Payload(metadata={"encoding": REFUSED_ENCODING, REFUSAL: str(error).encode()})


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    def __init__(self, keyring: Keyring, workflow_id: str | None = None) -> None:
        self._current = keyring.current_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}
        self._workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> Self:
        # The SDK calls this for every activation, client call and activity: a shallow copy that
        # shares the ciphers. Activities started by a course carry the course's workflow id too.
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = binding_of(context.workflow_id) if context.workflow_id else None
        if workflow_id == self._workflow_id:
            return self
        bound = copy.copy(self)
        bound._workflow_id = workflow_id
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt; a payload that cannot be decrypted comes back as a refusal, not an exception.

        The worker decodes a whole activation at once, and an exception there fails the workflow
        task: Temporal retries it forever and the course is stuck behind one bad update. A refusal
        is raised (`PayloadRefused`) only when the update's argument is read, before its
        validator, so the SDK rejects that update and nothing reaches history; a refused payload
        anywhere else (a missing key while replaying) still fails the task, as it must.
        """
        return [self._decode_or_refuse(payload) for payload in payloads]

    def unseal(self, payload: Payload) -> Payload:
        """Decrypt one payload or raise the reason (`PayloadCodecError`): for the codec server."""
        encoding = payload.metadata.get("encoding")
        if encoding == BOUND_ENCODING:
            return self._decrypt_bound(payload)
        if encoding == ENCODING:
            key_id = payload.metadata.get(KEY_ID, b"")
            return self._decrypt(payload, key_id, key_id)
        if _left_in_clear(payload):
            return payload
        # Every payload this service writes goes through `encode`; plaintext comes only from a
        # client without the codec, such as a raw SDK client speaking to the frontend directly.
        raise PlaintextRefused()

    def _decode_or_refuse(self, payload: Payload) -> Payload:
        try:
            return self.unseal(payload)
        except PayloadCodecError as error:
            # The reason names keys, workflow ids and the cause, never the payload's content.
            log.warning("payload refused", workflow_id=self._workflow_id, reason=str(error))
            return refused(error)

    def _encrypt(self, payload: Payload) -> Payload:
        if _left_in_clear(payload):
            return payload
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        cipher = self._ciphers[self._current]
        if self._workflow_id is None:
            # No workflow to bind to (the codec server encoding for the UI): the key id alone is
            # authenticated, as before the binding; moving it under another id fails to decrypt.
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)
        sealed = cipher.encrypt(nonce, payload.SerializeToString(), _bound_data(key_id, self._workflow_id))
        metadata = {"encoding": BOUND_ENCODING, KEY_ID: key_id, WORKFLOW_ID: self._workflow_id.encode()}
        return Payload(metadata=metadata, data=nonce + sealed)

    def _decrypt_bound(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID, b"")
        made_for = payload.metadata.get(WORKFLOW_ID, b"").decode(errors="replace")
        read_in = self._workflow_id or made_for  # without a context, the payload's own claim
        if not read_in:
            raise PayloadTampered(key_id.decode(errors="replace"))
        if made_for and made_for != read_in:  # a stripped hint falls through to a failed tag
            raise PayloadForAnotherWorkflow(key_id.decode(errors="replace"), made_for, read_in)
        return self._decrypt(payload, key_id, _bound_data(key_id, read_in))

    def _decrypt(self, payload: Payload, key_id_bytes: bytes, associated_data: bytes) -> Payload:
        key_id = key_id_bytes.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownPayloadKey(key_id)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadTampered(key_id)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, associated_data))
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
