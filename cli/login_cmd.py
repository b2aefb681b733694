"""`course login | logout | whoami`: the staff member the CLI acts as, proven by their token.

`login` asks for the token without echoing it (or reads it from standard input with
`--token-stdin`), checks it against the API (`GET /me`), and only then keeps it in a 0600 file.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from cli.edge import StaffApi
from cli.tokens import TOKEN_ENV, forget_token, read_token, store_token, token_path, well_formed
from worker.settings import Settings


def add_parsers(sub: Any) -> None:
    login = sub.add_parser("login", help="sign in with your staff token (kept in a file only you can read)")
    login.add_argument("--token-stdin", action="store_true", help="read the token from standard input")
    login.add_argument("--json", action="store_true", help="machine-readable output")
    logout = sub.add_parser("logout", help="forget the stored staff token")
    logout.add_argument("--json", action="store_true", help="machine-readable output")
    whoami = sub.add_parser("whoami", help="who the CLI acts as (checked by the API)")
    whoami.add_argument("--json", action="store_true", help="machine-readable output")


def api_url(settings: Settings) -> str:
    from api.server import api_url as served_at  # noqa: PLC0415 - the same default `course dev` prints

    return (settings.api_url or served_at(settings)).rstrip("/")


async def login(args: argparse.Namespace, settings: Settings) -> int:
    token = sys.stdin.readline() if args.token_stdin else getpass.getpass("Staff token (from `course staff add`): ")
    token = well_formed(token)
    async with StaffApi.session(api_url(settings), token) as api:
        member = await api.me()  # NotSignedIn when the API does not know it: nothing is stored
    path = store_token(token)
    _say(args, {"id": member.id, "role": member.role.value, "token_file": str(path)},
         f"signed in as {member.id} ({member.role.value}); token kept in {path}")  # fmt: skip
    if os.environ.get(TOKEN_ENV):
        print(f"note: {TOKEN_ENV} is set and is used before the file", file=sys.stderr)
    return 0


async def logout(args: argparse.Namespace, _: Settings) -> int:
    forgot = forget_token()
    text = f"signed out: {token_path()} deleted" if forgot else "no stored token to forget"
    if os.environ.get(TOKEN_ENV):
        text += f"; {TOKEN_ENV} is still set in this shell"
    _say(args, {"deleted": forgot}, text)
    return 0


async def whoami(args: argparse.Namespace, settings: Settings) -> int:
    url = api_url(settings)
    async with StaffApi.session(url, read_token()) as api:
        member = await api.me()
    _say(args, {"id": member.id, "role": member.role.value, "api": url}, f"{member.id} ({member.role.value}) at {url}")
    return 0


def _say(args: argparse.Namespace, value: dict[str, Any], text: str) -> None:
    import json  # noqa: PLC0415

    print(json.dumps(value, indent=2) if args.json else text)
