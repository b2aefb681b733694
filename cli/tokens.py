"""The staff token the `course` CLI acts with: `COURSE_TOKEN`, or the file `course login` writes.

The file is `$XDG_CONFIG_HOME/course/token` (default `~/.config/course/token`), created 0600 in a
0700 folder and replaced atomically. A token file that group or others can read, or that belongs
to another user, is refused rather than used: whoever could read it could act as its owner.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "COURSE_TOKEN"  # noqa: S105 - the variable's name, not a token
_TOKEN = re.compile(r"^[\x21-\x7e]{16,512}$")  # printable ASCII: it travels in a header


class NotSignedIn(Exception):
    """No usable staff token, or one the API does not accept: nothing was sent or recorded."""


def token_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "course" / "token"


def well_formed(token: str) -> str:
    token = token.strip()
    if not _TOKEN.match(token):
        raise NotSignedIn("that is not a staff token (it is printed once by `course staff add`)")
    return token


def read_token(environ: Mapping[str, str] = os.environ) -> str:
    """The token to act with; NotSignedIn, saying what to do, when there is none to use."""
    if environ.get(TOKEN_ENV, "").strip():
        return well_formed(environ[TOKEN_ENV])
    path = token_path(environ)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise NotSignedIn(
            "not signed in: clinical steps and reads act as a staff member, named by their token. "
            f"Run `course login` (or set {TOKEN_ENV}); nothing was sent."
        ) from None
    except OSError as error:  # a symbolic link (ELOOP), a folder, no permission
        raise NotSignedIn(
            f"the token file {path} cannot be read ({error.strerror}); run `course login` again"
        ) from None
    with os.fdopen(descriptor) as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.getuid():
            raise NotSignedIn(f"the token file {path} belongs to another user; run `course login` as yourself")
        if info.st_mode & 0o077:
            raise NotSignedIn(
                f"the token file {path} can be read by others (mode {stat.S_IMODE(info.st_mode):04o}), so it is not "
                f"used and nothing was sent. Run `chmod 600 {path}`; if others may have read it, ask for a new token "
                "(`course staff add` replaces it) and `course login` again."
            )
        return well_formed(file.read())


def store_token(token: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Write the token for `course login`: 0600 from its first byte, in place at once or not at all."""
    path = token_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".token.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(well_formed(token) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(draft, path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    return path


def forget_token(environ: Mapping[str, str] = os.environ) -> bool:
    """`course logout`: delete the token file; whether there was one."""
    try:
        token_path(environ).unlink()
    except FileNotFoundError:
        return False
    return True
