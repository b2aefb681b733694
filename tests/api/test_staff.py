"""Staff tokens: only hashes are kept, in the `staff` table or API_TOKENS; a revoked token stops working."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import asyncpg
import pytest

from api.server import staff_directory
from api.staff import ConfiguredStaff, PostgresStaff, config_entry, new_token
from course.commands import Actor, Role
from worker.settings import Settings

COURSE = [sys.executable, "-c", "from cli.main import main; main()"]


async def test_the_staff_table_keeps_a_hash_and_a_revoked_token_stops_working(pg_pool: asyncpg.Pool) -> None:
    staff = PostgresStaff(pg_pool)
    member = f"rn-{uuid.uuid4().hex[:8]}"
    token = await staff.add(member, Role.NURSE)
    assert await staff.member_for(token) == Actor(id=member, role=Role.NURSE)
    stored = await pg_pool.fetchrow("SELECT * FROM staff WHERE staff_id = $1", member)
    assert stored is not None and token.encode() not in bytes(stored["token_sha256"])
    assert token not in json.dumps({k: str(v) for k, v in dict(stored).items()})

    rotated = await staff.add(member, Role.NURSE)  # a new token replaces the old one
    assert await staff.member_for(token) is None
    assert await staff.revoke(member)
    assert await staff.member_for(rotated) is None
    assert not await staff.revoke(member)
    assert {"staff_id": member, "role": "nurse"}.items() <= next(
        m for m in await staff.members() if m["staff_id"] == member
    ).items()


async def test_configured_tokens_are_hashes_and_come_before_the_table(pg_pool: asyncpg.Pool) -> None:
    token = new_token()
    entry = config_entry("ops-cfg", Role.OPERATIONS, token)
    assert token not in entry
    settings = Settings(api_tokens=entry)
    directory = staff_directory(settings, PostgresStaff(pg_pool))
    assert await directory.member_for(token) == Actor(id="ops-cfg", role=Role.OPERATIONS)
    assert await directory.member_for(new_token()) is None
    for bad in ("ops-cfg:operations", "ops-cfg:janitor:" + "0" * 64, "ops-cfg:nurse:abc", "bad id:nurse:" + "0" * 64):
        with pytest.raises(ValueError, match="API_TOKENS"):
            ConfiguredStaff.parse(bad)


@pytest.mark.integration
async def test_course_staff_add_prints_a_token_once_and_list_never_shows_it(pg_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": pg_dsn}

    async def course(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *COURSE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await course("staff", "add", "th-cli", "--role", "therapist")
    token = out.strip()
    assert code == 0 and len(token) >= 40
    code, listed, _ = await course("staff", "list")
    assert code == 0 and "th-cli" in listed and token not in listed
    code, out, _ = await course("staff", "add", "th-cfg", "--role", "therapist", "--config", "--json")
    printed = json.loads(out)
    parsed = ConfiguredStaff.parse(printed["api_tokens_entry"])
    assert await parsed.member_for(printed["token"]) == Actor(id="th-cfg", role=Role.THERAPIST)
    assert (await course("staff", "add", "th-x"))[0] == 2  # no role
    code, admin, _ = await course("staff", "add", "admin-cli", "--role", "clinic_admin", "--json")
    assert code == 0 and json.loads(admin)["role"] == "clinic_admin"
    assert (await course("staff", "revoke", "nobody-here"))[0] == 2
    assert (await course("staff", "revoke", "th-cli"))[0] == 0
    # A member known only from API_TOKENS is revoked by the hash of their entry.
    env["API_TOKENS"] = printed["api_tokens_entry"]
    assert (await course("staff", "revoke", "th-cfg"))[0] == 0
    connection = await asyncpg.connect(pg_dsn)
    try:
        row = await connection.fetchrow("SELECT staff_id FROM revoked_tokens WHERE staff_id = 'th-cfg'")
    finally:
        await connection.close()
    assert row is not None


async def test_revoking_a_member_revokes_their_api_tokens_entry_at_once(pg_pool: asyncpg.Pool) -> None:
    """An API_TOKENS entry lives in a secret store read at start; `course staff revoke` must not
    wait for someone to edit it and restart every API process."""
    kept, revoked = new_token(), new_token()
    entries = ",".join([config_entry("rn-cfg", Role.NURSE, revoked), config_entry("ops-cfg2", Role.OPERATIONS, kept)])
    directory = staff_directory(Settings(api_tokens=entries), PostgresStaff(pg_pool))
    assert await directory.member_for(revoked) == Actor(id="rn-cfg", role=Role.NURSE)

    configured = ConfiguredStaff.parse(entries).digests_of("rn-cfg")
    assert await PostgresStaff(pg_pool).revoke("rn-cfg", configured)
    assert await directory.member_for(revoked) is None
    assert await directory.member_for(kept) == Actor(id="ops-cfg2", role=Role.OPERATIONS), "another entry still works"
    assert not await PostgresStaff(pg_pool).revoke("rn-cfg", configured), "a second revoke has nothing to end"
