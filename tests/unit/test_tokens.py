"""`course login`'s token file: only its owner can read it, and a file others can read is not used."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli.tokens import NotSignedIn, forget_token, read_token, store_token, token_path

TOKEN = "tok_" + "x" * 40


def _env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_login_keeps_the_token_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    env = _env(tmp_path)
    old = os.umask(0o022)  # a permissive umask must not widen the file
    try:
        path = store_token(TOKEN, env)
    finally:
        os.umask(old)
    assert path == tmp_path / "config" / "course" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_token(env) == TOKEN
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no draft left behind
    store_token("tok_" + "y" * 40, env)  # signing in again replaces it
    assert read_token(env) == "tok_" + "y" * 40


def test_a_token_file_others_can_read_is_refused_and_says_how_to_fix_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = store_token(TOKEN, env)
    path.chmod(0o640)
    with pytest.raises(NotSignedIn) as refused:
        read_token(env)
    assert "can be read by others (mode 0640)" in str(refused.value) and f"chmod 600 {path}" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_without_a_token_the_message_says_to_sign_in_and_course_token_comes_first(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with pytest.raises(NotSignedIn) as missing:
        read_token(env)
    assert "course login" in str(missing.value)
    store_token(TOKEN, env)
    assert read_token({**env, "COURSE_TOKEN": "tok_" + "z" * 40}) == "tok_" + "z" * 40
    assert forget_token(env) is True and not token_path(env).exists()
    assert forget_token(env) is False
    with pytest.raises(NotSignedIn):
        read_token({**env, "COURSE_TOKEN": "not a token\n"})
