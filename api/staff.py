"""Who is calling: bearer tokens mapped to a staff member's id and role.

Tokens are random (256 bits) and only their sha256 is kept, in configuration (`API_TOKENS`) or in
the `staff` table, so neither a leaked config nor a database backup lets anyone act as staff. The
acting member of every command comes from here, never from the request body.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Protocol

import asyncpg

from course.commands import Actor, Role

TOKEN_BYTES = 32
# Revoking or replacing a token ends the console sessions it opened (migrations/0005). Each request
# also re-checks the session's token (api/sessions.py), so a row this missed still does not work.
_END_SESSIONS = (
    "UPDATE console_sessions SET ended_at = now(), ended_reason = $2 WHERE staff_id = $1 AND ended_at IS NULL"
)


class StaffDirectory(Protocol):
    async def member_for(self, token: str) -> Actor | None: ...

    async def member_for_digest(self, digest: bytes) -> Actor | None:
        """The member whose current token has this sha256: a console session (api/sessions.py)
        keeps its token's hash, and lives only while this still names the same member and role."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def config_entry(staff_id: str, role: Role, token: str) -> str:
    """One `API_TOKENS` entry for this member: their id, role and the token's hash."""
    Actor(id=staff_id, role=role)  # the same id rules as everywhere else
    return f"{staff_id}:{role.value}:{token_digest(token).hex()}"


class ConfiguredStaff:
    """`API_TOKENS=staff_id:role:sha256hex,...`: for clinics that manage tokens in a secret store."""

    def __init__(self, members: Sequence[tuple[Actor, bytes]], revocations: asyncpg.Pool | None = None) -> None:
        self._members = list(members)
        self._revocations = revocations  # `revoked_tokens`: entries `course staff revoke` has ended

    def revocable(self, pool: asyncpg.Pool) -> ConfiguredStaff:
        """The same entries, each refused once `course staff revoke` has revoked it."""
        return ConfiguredStaff(self._members, pool)

    def digests_of(self, staff_id: str) -> list[bytes]:
        return [digest for actor, digest in self._members if actor.id == staff_id]

    @classmethod
    def parse(cls, spec: str) -> ConfiguredStaff:
        members: list[tuple[Actor, bytes]] = []
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            staff_id, role, digest = [*entry.split(":"), "", ""][:3]
            try:
                actor = Actor(id=staff_id, role=Role(role))
                hashed = bytes.fromhex(digest)
            except ValueError:
                raise ValueError("API_TOKENS entries are `staff_id:role:sha256hex`") from None
            if len(hashed) != hashlib.sha256().digest_size:
                raise ValueError("API_TOKENS entries are `staff_id:role:sha256hex` (64 hex digits)")
            members.append((actor, hashed))
        return cls(members)

    async def member_for(self, token: str) -> Actor | None:
        return await self.member_for_digest(token_digest(token))

    async def member_for_digest(self, digest: bytes) -> Actor | None:
        found = None
        for actor, expected in self._members:  # every entry compared, each in constant time
            if hmac.compare_digest(digest, expected):
                found = actor
        if found is not None and self._revocations is not None:
            revoked = await self._revocations.fetchval("SELECT 1 FROM revoked_tokens WHERE token_sha256 = $1", digest)
            if revoked:
                return None
        return found


class PostgresStaff:
    """The `staff` table; `course staff add|revoke|list` manage it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def member_for(self, token: str) -> Actor | None:
        return await self.member_for_digest(token_digest(token))

    async def member_for_digest(self, digest: bytes) -> Actor | None:
        # Looked up by hash: the token has 256 bits of entropy, so timing reveals nothing useful.
        row = await self._pool.fetchrow(
            "SELECT staff_id, role FROM staff WHERE token_sha256 = $1 AND revoked_at IS NULL", digest
        )
        return None if row is None else Actor(id=row["staff_id"], role=Role(row["role"]))

    async def add(self, staff_id: str, role: Role) -> str:
        """A new token for this member (replacing any earlier one, whose console sessions end);
        returned once, stored hashed."""
        Actor(id=staff_id, role=role)
        token = new_token()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO staff (staff_id, role, token_sha256) VALUES ($1, $2, $3) "
                "ON CONFLICT (staff_id) DO UPDATE SET role = EXCLUDED.role, token_sha256 = EXCLUDED.token_sha256, "
                "created_at = now(), revoked_at = NULL",
                staff_id,
                role.value,
                token_digest(token),
            )
            await conn.execute(_END_SESSIONS, staff_id, "token_replaced")
        return token

    async def revoke(self, staff_id: str, configured: Sequence[bytes] = ()) -> bool:
        """The member's token stops working, and every console session it opened ends, at once;
        `configured`: the hashes of the member's `API_TOKENS` entries, revoked with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE staff SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL", staff_id
            )
            revoked = 0
            for digest in configured:
                inserted = await conn.execute(
                    "INSERT INTO revoked_tokens (token_sha256, staff_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    digest,
                    staff_id,
                )
                revoked += str(inserted).endswith(" 1")
            await conn.execute(_END_SESSIONS, staff_id, "token_revoked")
        return str(done).endswith(" 1") or revoked > 0

    async def members(self) -> list[dict[str, str | None]]:
        rows = await self._pool.fetch("SELECT staff_id, role, created_at, revoked_at FROM staff ORDER BY staff_id")
        return [
            {
                "staff_id": r["staff_id"],
                "role": r["role"],
                "created_at": r["created_at"].isoformat(),
                "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
            }
            for r in rows
        ]


class AnyOf:
    """Configured tokens first, then the table: a clinic may use either or both."""

    def __init__(self, *directories: StaffDirectory) -> None:
        self._directories = directories

    async def member_for(self, token: str) -> Actor | None:
        return await self.member_for_digest(token_digest(token))

    async def member_for_digest(self, digest: bytes) -> Actor | None:
        for directory in self._directories:
            found = await directory.member_for_digest(digest)
            if found is not None:
                return found
        return None
