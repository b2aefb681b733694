"""The process's signing keys, configured once at start-up (worker, API, CLI).

Workers hold a KeyRing (public keys) and no Signer; the edge that authenticates staff holds the
Signer. The workflow reads the ring only in its update validator, which never runs on replay, so
a key added or retired between runs cannot make a history non-deterministic. Nothing is read here
at import time: the workflow sandbox re-imports modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trust.signing import KeyRing, Signer

if TYPE_CHECKING:
    from worker.settings import Settings

_state: dict[str, object] = {}


def configure(*, ring: KeyRing | None = None, signer: Signer | None = None) -> None:
    """Set the ring and the signer (None clears them: commands are then not signature-checked)."""
    _state["ring"] = ring
    _state["signer"] = signer


def ring() -> KeyRing | None:
    value = _state.get("ring")
    return value if isinstance(value, KeyRing) else None


def signer() -> Signer | None:
    value = _state.get("signer")
    return value if isinstance(value, Signer) else None


SIGNING_KEY_FILE = "signing-key"


def configure_from_settings(settings: Settings) -> None:
    """VERIFY_KEYS / SIGNING_KEY from the environment; neither set: a local key under the data
    folder (created on first use, 0600) that signs and verifies, for a laptop only. A worker in
    a clinic has VERIFY_KEYS and no SIGNING_KEY; the API has both."""
    from worker.codec import private_file  # noqa: PLC0415 - keeps this module light for the sandbox

    signing = settings.signing_key.get_secret_value() if settings.signing_key else None
    if settings.verify_keys:
        configure(
            ring=KeyRing.from_setting(settings.verify_keys), signer=Signer.from_setting(signing) if signing else None
        )
        return
    if signing:
        signer = Signer.from_setting(signing)
    else:
        path = settings.course_data_dir / SIGNING_KEY_FILE
        text, _created = private_file(path, lambda: Signer.generate("local").private_setting() + "\n")
        signer = Signer.from_setting(text.strip())
    configure(ring=KeyRing.from_setting(signer.public_setting()), signer=signer)


if __name__ == "__main__":
    # `python -m trust.keys [KEY_ID]`: a new signing key pair, as the two settings' values.
    import sys
    from datetime import UTC, datetime

    new = Signer.generate(sys.argv[1] if len(sys.argv) > 1 else f"api-{datetime.now(UTC):%Y%m%d}")
    print(f"SIGNING_KEY={new.private_setting()}")
    print(f"VERIFY_KEYS={new.public_setting()}")
