"""`course export --fhir --since TIME --out DIR`: a bulk FHIR export, for operations.

A staff command, not an operator's: the files hold course data, so the CLI goes through the API
with the member's token (the API refuses anyone but operations, and every course exported is a
read of that member's, decided and recorded like any other). It kicks off `POST /fhir/$export`,
polls the status URL (printing the progress), and downloads each file of the manifest into DIR,
then writes the manifest there with each `url` pointing at the local file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli import when

POLL_SECONDS = 2.0
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")  # the only file names written into --out


class BulkExportInvalid(ValueError):
    """Bad options, caught before anything is sent: exit 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="bulk export: the courses changed since TIME (ISO 8601 with its zone, or a duration ago: 7d, 12h)",
    )
    parser.add_argument("--out", metavar="DIR", type=Path, help="bulk export: the folder for the NDJSON files")
    parser.add_argument(
        "--wait", type=float, default=3600.0, help="bulk export: seconds to wait for it to finish (default 3600)"
    )


def since_option(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return when.since(text, now)
    except when.BadTime:
        raise BulkExportInvalid(
            f"--since {text!r} is not a time: give one with its zone (2026-11-30T00:00:00Z) "
            "or a duration ago (7d, 12h, 90m)"
        ) from None


async def run(args: argparse.Namespace, settings: Any) -> int:
    from cli.main import _api  # noqa: PLC0415 - the CLI's one way to the API, as the token's owner

    since = since_option(args.since, datetime.now(UTC))
    if args.out is None:
        raise BulkExportInvalid("a bulk export needs --out DIR (the folder for its files)")
    async with _api(settings) as api:
        status_url = await api.start_bulk_export(since)
        deadline = time.monotonic() + args.wait
        shown = ""
        while True:
            manifest, progress = await api.bulk_export_status(status_url)
            if manifest is not None:
                break
            if progress != shown:
                print(f"export {progress}", file=sys.stderr)
                shown = progress
            if time.monotonic() > deadline:
                print(f"error: not finished after {args.wait:g} s; it goes on: {status_url}", file=sys.stderr)
                return 1
            await asyncio.sleep(POLL_SECONDS)
        await save(api, manifest, args.out)
    counts = ", ".join(f"{entry['type']} {entry['count']}" for entry in manifest["output"])
    print(f"exported to {args.out}: {counts or 'nothing changed'}")
    return 0


async def save(api: Any, manifest: dict[str, Any], out: Path) -> None:
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    local: dict[str, Any] = {**manifest, "output": [], "error": []}
    for section in ("output", "error"):
        for entry in manifest[section]:
            if not RESOURCE_TYPE.fullmatch(str(entry["type"])):
                raise ValueError("the manifest names a file that is not a resource type")
            target = (out / f"{entry['type']}.ndjson").resolve()
            await api.download(entry["url"], target)
            local[section].append({**entry, "url": target.as_uri()})
    (out / "manifest.json").write_text(json.dumps(local, indent=2) + "\n")
