"""Console sessions: what the console's cookie carries instead of the staff token.

Signing in with a staff token opens a session: a random id (256 bits) that goes into an HttpOnly,
SameSite=Strict cookie (`Secure` unless running for local development); the `console_sessions`
table keeps only its sha256, the member, their role and the hash of the token that opened it.
On every request the session must still be open, seen within the idle window
(`CONSOLE_IDLE_MINUTES`, 30) and younger than the absolute limit (`CONSOLE_SESSION_HOURS`, 10),
and its token must still name the same member and role (a revoked or replaced token ends it,
even if the row was somehow left open). Signing out ends every session of the member.
The clock is PostgreSQL's: every API replica agrees on it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import asyncpg

from api.staff import StaffDirectory, token_digest
from course.commands import Actor, Role

SESSION_BYTES = 32
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43,128}$")  # what token_urlsafe(32) makes, with room to grow

EndReason = Literal["signed_out", "idle", "expired", "token_revoked", "token_replaced"]


@dataclass(frozen=True)
class Ended:
    """A session that existed and is over: why, so the sign-in page can say so."""

    reason: EndReason


def session_digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class ConsoleSessions:
    def __init__(self, pool: asyncpg.Pool, staff: StaffDirectory, *, idle: timedelta, absolute: timedelta) -> None:
        self._pool = pool
        self._staff = staff
        self.idle = idle
        self.absolute = absolute

    async def start(self, actor: Actor, token: str) -> str:
        """A new session for the member this token names; the id is returned once, stored hashed."""
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        await self._pool.execute(
            "INSERT INTO console_sessions (session_sha256, staff_id, role, token_sha256) VALUES ($1, $2, $3, $4)",
            session_digest(session_id),
            actor.id,
            actor.role.value,
            token_digest(token),
        )
        return session_id

    async def resume(self, session_id: str) -> Actor | Ended | None:
        """The member signed in with this session (and the session is seen now), why it ended, or
        None when it is no session of ours."""
        if not _SESSION_ID.match(session_id):
            return None
        digest = session_digest(session_id)
        row = await self._pool.fetchrow(
            "UPDATE console_sessions SET last_seen_at = now() "
            "WHERE session_sha256 = $1 AND ended_at IS NULL "
            "AND last_seen_at > now() - $2::interval AND created_at > now() - $3::interval "
            "RETURNING staff_id, role, token_sha256",
            digest,
            self.idle,
            self.absolute,
        )
        if row is None:
            return await self._why_not(digest)
        signed_in = Actor(id=row["staff_id"], role=Role(row["role"]))
        if await self._staff.member_for_digest(bytes(row["token_sha256"])) != signed_in:
            # The token was revoked or replaced (or its API_TOKENS entry changed) after sign-in.
            await self._pool.execute(
                "UPDATE console_sessions SET ended_at = now(), ended_reason = 'token_revoked' "
                "WHERE staff_id = $1 AND token_sha256 = $2 AND ended_at IS NULL",
                signed_in.id,
                row["token_sha256"],
            )
            return Ended("token_revoked")
        return signed_in

    async def end_all(self, staff_id: str, reason: EndReason = "signed_out") -> int:
        """End every open session of this member (sign-out); ones already past a limit say which."""
        done = await self._pool.execute(
            "UPDATE console_sessions SET ended_at = now(), ended_reason = CASE "
            "WHEN created_at <= now() - $3::interval THEN 'expired' "
            "WHEN last_seen_at <= now() - $2::interval THEN 'idle' ELSE $4 END "
            "WHERE staff_id = $1 AND ended_at IS NULL",
            staff_id,
            self.idle,
            self.absolute,
            reason,
        )
        return int(str(done).rsplit(" ", 1)[-1])

    async def _why_not(self, digest: bytes) -> Ended | None:
        """A session that did not resume: end it now if a limit passed, and say why it is over."""
        ended = await self._pool.fetchval(
            "UPDATE console_sessions SET ended_at = now(), ended_reason = "
            "CASE WHEN created_at <= now() - $3::interval THEN 'expired' ELSE 'idle' END "
            "WHERE session_sha256 = $1 AND ended_at IS NULL "
            "AND (last_seen_at <= now() - $2::interval OR created_at <= now() - $3::interval) "
            "RETURNING ended_reason",
            digest,
            self.idle,
            self.absolute,
        )
        if ended is None:
            ended = await self._pool.fetchval(
                "SELECT ended_reason FROM console_sessions WHERE session_sha256 = $1", digest
            )
        return None if ended is None else Ended(ended)
