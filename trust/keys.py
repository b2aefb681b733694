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
BREAK_GLASS_KEY_FILE = "break-glass-key"


class NoBreakGlassKey(Exception):
    """This process holds no break-glass key: it cannot record a step without the API."""


def configure_from_settings(settings: Settings) -> None:
    """VERIFY_KEYS / SIGNING_KEY from the environment; neither set: a local key under the data
    folder (created on first use, 0600) that signs and verifies, for a laptop only. A worker in
    a clinic has VERIFY_KEYS and no SIGNING_KEY; the API has both. The break-glass ring comes from
    BREAK_GLASS_VERIFY_KEYS, or on a laptop from the local break-glass key; none: no break-glass
    step is accepted."""
    from worker.codec import private_file  # noqa: PLC0415 - keeps this module light for the sandbox

    signing = settings.signing_key.get_secret_value() if settings.signing_key else None
    if settings.verify_keys:
        ring = KeyRing.from_setting(settings.verify_keys)
        configure(
            ring=ring.with_break_glass(_break_glass_ring(settings)),
            signer=Signer.from_setting(signing) if signing else None,
        )
        return
    if signing:
        signer = Signer.from_setting(signing)
    else:
        path = settings.course_data_dir / SIGNING_KEY_FILE
        text, _created = private_file(path, lambda: Signer.generate("local").private_setting() + "\n")
        signer = Signer.from_setting(text.strip())
    ring = KeyRing.from_setting(signer.public_setting())
    configure(ring=ring.with_break_glass(_break_glass_ring(settings, local=True)), signer=signer)


def _break_glass_ring(settings: Settings, *, local: bool = False) -> KeyRing | None:
    if settings.break_glass_verify_keys:
        return KeyRing.from_setting(settings.break_glass_verify_keys, "BREAK_GLASS_VERIFY_KEYS")
    if local:
        return KeyRing.from_setting(break_glass_signer(settings).public_setting(), "BREAK_GLASS_VERIFY_KEYS")
    return None


def break_glass_signer(settings: Settings) -> Signer:
    """The operator's own break-glass key: BREAK_GLASS_KEY, or on a laptop (no VERIFY_KEYS) a local
    one under the data folder. Never the edge's SIGNING_KEY."""
    from worker.codec import private_file  # noqa: PLC0415

    if settings.break_glass_key:
        return Signer.from_setting(settings.break_glass_key.get_secret_value())
    if settings.verify_keys:
        raise NoBreakGlassKey(
            "no break-glass key: set BREAK_GLASS_KEY to your own key (`python -m trust.keys --break-glass YOUR_ID` "
            "makes one; its BREAK_GLASS_VERIFY_KEYS entry goes to every worker)"
        )
    path = settings.course_data_dir / BREAK_GLASS_KEY_FILE
    text, _created = private_file(path, lambda: Signer.generate("local-break-glass").private_setting() + "\n")
    return Signer.from_setting(text.strip())


if __name__ == "__main__":
    # `python -m trust.keys [KEY_ID]`: a new signing key pair, as the two settings' values.
    # `python -m trust.keys --break-glass OPERATOR_ID`: an operator's own break-glass pair.
    import sys
    from datetime import UTC, datetime

    arguments = sys.argv[1:]
    glass = "--break-glass" in arguments
    named = [a for a in arguments if a != "--break-glass"]
    default = f"{'bg' if glass else 'api'}-{datetime.now(UTC):%Y%m%d}"
    new = Signer.generate(named[0] if named else default)
    print(f"{'BREAK_GLASS_KEY' if glass else 'SIGNING_KEY'}={new.private_setting()}")
    print(f"{'BREAK_GLASS_VERIFY_KEYS' if glass else 'VERIFY_KEYS'}={new.public_setting()}")
