"""`course policy publish|list|show`: the clinic's course policies, published on the server.

Publishing needs a clinic_admin's staff token: it goes through the API (`POST /policies`) like every
staff command, so the publisher is the token's owner. Each version is a row of the append-only
`clinic_policies` table: who published it, when, and its hash.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from course.publication import MAX_POLICY_VERSION, PolicyRefused, check_name, for_publication
from worker.settings import Settings

if TYPE_CHECKING:
    from api.policies import PostgresPolicies


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("policy", help="the clinic's course policies: publish FILE | list | show NAME")
    parser.add_argument("action", choices=["publish", "list", "show"])
    parser.add_argument(
        "target", nargs="?", metavar="FILE|NAME", help="publish: a policy JSON file (- for stdin); show: a name"
    )
    parser.add_argument("--name", help="publish: the policy's name (default $CLINIC_POLICY, `default`)")
    parser.add_argument("--version", type=int, help="show: that version (default: the current one)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def refused(error: PolicyRefused) -> str:
    where = "; ".join(f"{e['field']}: {e['problem']}" for e in error.errors)
    return f"{error.message} ({error.code})" + (f": {where}" if where else "")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.policies import PostgresPolicies  # noqa: PLC0415
    from cli.main import InvalidInput, _api, _read_payload  # noqa: PLC0415 - the CLI's own helpers
    from worker.database import create_pool, database_url, migrate  # noqa: PLC0415

    if args.action != "list" and not args.target:
        raise InvalidInput("usage: course policy publish FILE [--name NAME] | course policy show NAME [--version N]")
    if args.version is not None and not 1 <= args.version <= MAX_POLICY_VERSION:
        raise InvalidInput("--version is a published version (1, 2, ...); `course policy list` shows them")
    if args.action == "publish":
        try:
            policy = for_publication(_read_payload(args.target))
        except PolicyRefused as error:
            raise InvalidInput(refused(error)) from None
        async with _api(settings) as api:  # the publisher is the token's owner
            published, new = await api.publish_policy(args.name, policy.model_dump(mode="json"))
        said = "published" if new else "unchanged (the current version has this very body):"
        text = f"{said} {published['name']} version {published['version']}, sha256 {published['sha256']}"
        _print(args, published, text)
        return 0
    dsn = database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    pool = await create_pool(dsn, max_size=2)
    try:
        policies = PostgresPolicies(pool)
        if args.action == "list":
            await _list(args, policies)
        else:
            await _show(args, policies)
    except PolicyRefused as error:
        raise InvalidInput(refused(error)) from None
    finally:
        await pool.close()
    return 0


async def _list(args: argparse.Namespace, policies: PostgresPolicies) -> None:
    rows = await policies.versions()
    text = "\n".join(
        f"{r.name:<16} v{r.version:<4} {'current' if r.current else '       '}  "
        f"{r.published_at.isoformat(timespec='seconds')}  {r.published_by:<20} {r.sha256[:16]}"
        for r in rows
    )
    _print(args, [r.model_dump(mode="json") for r in rows], text or "no policies published")


async def _show(args: argparse.Namespace, policies: PostgresPolicies) -> None:
    from cli.main import InvalidInput  # noqa: PLC0415

    found = await policies.get(check_name(args.target), args.version)
    if found is None:
        which = f"version {args.version} of " if args.version else ""
        raise InvalidInput(f"no {which}policy {args.target} is published; `course policy list` shows them")
    header = (
        f"{found.name} version {found.version}, published by {found.published_by} at "
        f"{found.published_at.isoformat(timespec='seconds')}, sha256 {found.sha256}"
    )
    _print(args, found.model_dump(mode="json"), f"{header}\n{found.policy.model_dump_json(indent=2)}")


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, indent=2) if args.json else text)
