"""`course staff add|revoke|list`: who may use the HTTP API and the clinician console.

`add` prints the member's new token once; only its sha256 is stored (the `staff` table); `revoke`
ends the token and every console session it opened, at once. With
`--config` nothing is stored: it prints the token and the `API_TOKENS` entry for a secret store.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from course.commands import Role
from worker.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("staff", help="staff tokens for the HTTP API and console: add | revoke | list")
    parser.add_argument("action", choices=["add", "revoke", "list"])
    parser.add_argument("staff_id", nargs="?", help="the member's opaque id, e.g. dr-ames")
    parser.add_argument("--role", choices=[r.value for r in Role], help="for add")
    parser.add_argument("--config", action="store_true", help="add: print an API_TOKENS entry, store nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.staff import ConfiguredStaff, PostgresStaff, config_entry, new_token  # noqa: PLC0415
    from cli.main import InvalidInput  # noqa: PLC0415 - the CLI's own error, defined beside run()
    from worker.database import create_pool, database_url, migrate  # noqa: PLC0415

    if args.action != "list" and not args.staff_id:
        raise InvalidInput(f"usage: course staff {args.action} STAFF_ID" + (" --role ROLE" * (args.action == "add")))
    if args.action == "add" and not args.role:
        raise InvalidInput(f"course staff add needs --role ({' | '.join(r.value for r in Role)})")
    if args.action == "add" and args.config:
        token = new_token()
        try:
            entry = config_entry(args.staff_id, Role(args.role), token)
        except ValidationError:
            raise InvalidInput("staff ids are letters, digits and . _ : @ - (up to 64)") from None
        _show(args, {"staff_id": args.staff_id, "token": token, "api_tokens_entry": entry})
        return 0
    dsn = database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    pool = await create_pool(dsn, max_size=2)
    try:
        staff = PostgresStaff(pool)
        if args.action == "add":
            try:
                token = await staff.add(args.staff_id, Role(args.role))
            except ValidationError:
                raise InvalidInput("staff ids are letters, digits and . _ : @ - (up to 64)") from None
            _show(args, {"staff_id": args.staff_id, "role": args.role, "token": token})
        elif args.action == "revoke":
            # The member's API_TOKENS entries too (this process reads the same secret as the API).
            configured = (
                ConfiguredStaff.parse(settings.api_tokens.get_secret_value()).digests_of(args.staff_id)
                if settings.api_tokens is not None
                else []
            )
            if not await staff.revoke(args.staff_id, configured):
                raise InvalidInput(f"no active token for {args.staff_id}")
            _show(args, {"staff_id": args.staff_id, "revoked": True})
        else:
            members = await staff.members()
            if args.json:
                print(json.dumps(members, indent=2))
            else:
                for m in members:
                    print(f"{m['staff_id']:<24} {m['role']:<11} {'revoked' if m['revoked_at'] else 'active'}")
    finally:
        await pool.close()
    return 0


def _show(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result, indent=2))
    elif "token" in result:
        print(result["token"])
        if "api_tokens_entry" in result:
            print(f"API_TOKENS entry: {result['api_tokens_entry']}")
    else:
        print(f"revoked the token of {result['staff_id']}; its console sessions have ended")
