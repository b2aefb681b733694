"""Signed commands: who took a step is proven from the edge that knew them into the stored event.

The component that turns a staff credential into an actor (the HTTP API) signs every step with
Ed25519 over the course, the update id, the actor, the step, a digest of the canonical payload,
the time it was issued and the key id. Workers hold public keys only: the update validator
refuses a command that is unsigned, signed by an unknown key, signed for another course or update,
altered, or issued outside the policy's window, before anything reaches history or PostgreSQL.

Keys rotate like payload keys: `SIGNING_KEY` (`id:base64 private seed`, the edge's current key)
and `VERIFY_KEYS` (`id:base64 public key,...`, every key a worker or `course verify` accepts).

Break-glass: an operator who must record a step without the API (it is down, or a clinician at
the bedside cannot sign in) signs with their own key (`BREAK_GLASS_KEY`), and the signature carries
a reason code. Workers check such a signature against a separate ring (`BREAK_GLASS_VERIFY_KEYS`):
a break-glass key never signs an ordinary step, and the edge's key never signs a break-glass one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from course.provenance import BreakGlassStep, CommandSignature


class SignatureRefused(Exception):
    """Why a command's signature is not accepted: a stable code and a sentence for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same payload always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_digest(payload: Mapping[str, Any]) -> str:
    """sha256 of a command's canonical JSON (`model_dump(mode="json")`, the step included)."""
    return hashlib.sha256(canonical_json(dict(payload))).hexdigest()


def _signed_bytes(signature: CommandSignature, actor_id: str, role: str, step: str) -> bytes:
    return canonical_json(
        {
            "v": signature.version,
            "course_id": signature.course_id,
            "update_id": signature.update_id,
            "actor_id": actor_id,
            "role": role,
            "step": step,
            "payload_sha256": signature.payload_sha256,
            "issued_at": signature.issued_at.astimezone(UTC).isoformat(),
            "key_id": signature.key_id,
            "break_glass": signature.break_glass,
        }
    )


class Signer:
    """The edge's private key: signs steps for the staff member its credential names."""

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._key = private_key

    @classmethod
    def from_setting(cls, value: str) -> Signer:
        """`id:base64 32-byte seed` (SIGNING_KEY)."""
        key_id, _, encoded = value.strip().partition(":")
        seed = base64.b64decode(encoded)
        if not key_id or len(seed) != 32:
            raise ValueError("SIGNING_KEY must be 'id:base64 of a 32-byte Ed25519 seed'")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, key_id: str) -> Signer:
        return cls(key_id, Ed25519PrivateKey.generate())

    def private_setting(self) -> str:
        """This key as a `SIGNING_KEY` value (a secret: for the edge's configuration only)."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"{self.key_id}:{base64.b64encode(seed).decode()}"

    def public_setting(self) -> str:
        """This key's `VERIFY_KEYS` entry."""
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.key_id}:{base64.b64encode(raw).decode()}"

    def sign(
        self,
        *,
        course_id: str,
        update_id: str,
        actor_id: str,
        role: str,
        step: str,
        payload: Mapping[str, Any],
        now: datetime | None = None,
        break_glass: str | None = None,
    ) -> CommandSignature:
        unsigned = CommandSignature(
            key_id=self.key_id,
            course_id=course_id,
            update_id=update_id,
            issued_at=(now or datetime.now(UTC)).astimezone(UTC),
            payload_sha256=payload_digest(payload),
            break_glass=break_glass,
            value="",
        )
        value = self._key.sign(_signed_bytes(unsigned, actor_id, role, step))
        return unsigned.model_copy(update={"value": base64.b64encode(value).decode()})


class KeyRing:
    """Public keys by id: what workers and `course verify` accept; the break-glass keys apart."""

    def __init__(
        self, keys: Mapping[str, Ed25519PublicKey], break_glass: Mapping[str, Ed25519PublicKey] | None = None
    ) -> None:
        self._keys = dict(keys)
        self._break_glass = dict(break_glass or {})

    @classmethod
    def from_setting(cls, value: str, setting: str = "VERIFY_KEYS") -> KeyRing:
        """`id:base64 public key,...` (VERIFY_KEYS, BREAK_GLASS_VERIFY_KEYS)."""
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in filter(None, (part.strip() for part in value.split(","))):
            key_id, _, encoded = entry.partition(":")
            raw = base64.b64decode(encoded)
            if not key_id or len(raw) != 32:
                raise ValueError(f"{setting} entries must be 'id:base64 of a 32-byte Ed25519 public key'")
            keys[key_id] = Ed25519PublicKey.from_public_bytes(raw)
        if not keys:
            raise ValueError(f"{setting} names no key")
        return cls(keys)

    def with_break_glass(self, ring: KeyRing | None) -> KeyRing:
        """This ring for ordinary steps, `ring`'s keys for break-glass ones (None: none accepted)."""
        return KeyRing(self._keys, ring._keys if ring is not None else None)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    @property
    def break_glass_key_ids(self) -> list[str]:
        return sorted(self._break_glass)

    def _key_for(self, signature: CommandSignature) -> Ed25519PublicKey:
        """The public key this signature must verify under: ordinary and break-glass keys never stand
        in for each other, whatever their ids."""
        if signature.break_glass is None:
            key = self._keys.get(signature.key_id)
            if key is None and signature.key_id in self._break_glass:
                raise SignatureRefused(
                    "break_glass_key_misused",
                    "This step is signed with a break-glass key but is not marked break-glass: "
                    "that key signs emergency steps only, each with its reason.",
                )
            if key is None:
                raise SignatureRefused("unknown_key", f"This step is signed with an unknown key ({signature.key_id}).")
            return key
        if signature.break_glass not in {reason.value for reason in BreakGlassStep}:
            raise SignatureRefused(
                "break_glass_reason_unknown",
                f"This break-glass step gives no known reason; reasons: {', '.join(r.value for r in BreakGlassStep)}.",
            )
        key = self._break_glass.get(signature.key_id)
        if key is None:
            raise SignatureRefused(
                "not_a_break_glass_key",
                f"This step is marked break-glass but its key ({signature.key_id}) is not one of the clinic's "
                "break-glass keys (BREAK_GLASS_VERIFY_KEYS).",
            )
        return key

    def check(
        self,
        signature: CommandSignature | None,
        *,
        course_id: str,
        update_id: str | None,
        actor_id: str,
        role: str,
        step: str,
        payload: Mapping[str, Any],
        now: datetime | None,
        window: timedelta | None,
    ) -> None:
        """Raise SignatureRefused unless `signature` proves this very command. `now`/`window`
        None: no freshness check (verifying stored events long after they were signed)."""
        if signature is None:
            raise SignatureRefused(
                "unsigned", "This step is not signed: steps are accepted only through the clinic's API."
            )
        key = self._key_for(signature)
        if signature.course_id != course_id:
            raise SignatureRefused("signed_for_another_course", "This step was signed for another course.")
        if update_id is not None and signature.update_id != update_id:
            raise SignatureRefused("signed_for_another_request", "This step was signed for another request id.")
        if signature.payload_sha256 != payload_digest(payload):
            raise SignatureRefused("payload_altered", "This step's data is not the data that was signed.")
        try:
            key.verify(base64.b64decode(signature.value), _signed_bytes(signature, actor_id, role, step))
        except (InvalidSignature, ValueError):
            raise SignatureRefused("bad_signature", "This step's signature does not verify.") from None
        if now is not None and window is not None:
            issued = signature.issued_at
            if issued > now + timedelta(minutes=1) or now - issued > window:
                minutes = int(window.total_seconds() // 60)
                raise SignatureRefused(
                    "signature_expired",
                    f"This step was signed too long ago or in the future (the window is {minutes} minutes): "
                    "send it again from the clinic's API.",
                )
