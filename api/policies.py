"""The clinic's published policies: the `clinic_policies` table (migrations/0007_policies.sql).

Append-only: a publication is a new version, never an edit, so the table is its own audit (who
published which version, when) and a course's recorded version and hash always point at the rules
it opened on. `course policy` and `/policies` publish and read it; opening a course resolves a name
and version here (`resolve`) and hands the workflow the body with its reference.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog
from pydantic import BaseModel

from course.commands import Actor
from course.policy import CoursePolicy, PolicyRef
from course.publication import PolicyRefused, canonical, check_name, publisher_refusal, sha256_of

log = structlog.get_logger(__name__)

# Serialises publications of one name (with hashtext of the name): each reads the latest version
# and writes the next, and two at once must not both find the same latest.
_PUBLISH_LOCK = 7_310_222


_LATEST = (
    "SELECT name, version, body, sha256, published_by, published_at FROM clinic_policies "
    "WHERE name = $1 ORDER BY version DESC LIMIT 1"
)
_VERSION = (
    "SELECT name, version, body, sha256, published_by, published_at FROM clinic_policies "
    "WHERE name = $1 AND version = $2"
)


class PublishedPolicy(BaseModel):
    name: str
    version: int
    sha256: str
    published_by: str
    published_at: datetime
    policy: CoursePolicy

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(name=self.name, version=self.version, sha256=self.sha256)


class PublishedVersion(BaseModel):
    """One row of `course policy list` / `GET /policies`: which version, by whom, when; no body."""

    name: str
    version: int
    sha256: str
    published_by: str
    published_at: datetime
    current: bool


class PostgresPolicies:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def publish(self, name: str, policy: CoursePolicy, actor: Actor) -> tuple[PublishedPolicy, bool]:
        """The next version of `name`, or the current one (False) when its body is the same:
        a retried publication does not make a second identical version."""
        check_name(name)
        refusal = publisher_refusal(actor)
        if refusal is not None:
            raise PolicyRefused("role_not_permitted", refusal)
        body = canonical(policy)
        digest = sha256_of(body)
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _PUBLISH_LOCK, name)
            latest = await connection.fetchrow(_LATEST, name)
            if latest is not None and latest["sha256"] == digest:
                return _published(latest), False
            row = await connection.fetchrow(
                "INSERT INTO clinic_policies (name, version, body, sha256, published_by) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING name, version, body, sha256, published_by, published_at",
                name,
                (latest["version"] if latest else 0) + 1,
                body,
                digest,
                actor.id,
            )
        assert row is not None
        published = _published(row)
        # The audit line: who, which version, its hash; never the body.
        log.info("policy published", policy=name, version=published.version, sha256=digest, staff=actor.id)
        return published, True

    async def get(self, name: str, version: int | None = None) -> PublishedPolicy | None:
        """That version of `name`, or its current (highest) one."""
        if version is None:
            row = await self._pool.fetchrow(_LATEST, name)
        else:
            row = await self._pool.fetchrow(_VERSION, name, version)
        return None if row is None else _published(row)

    async def versions(self) -> list[PublishedVersion]:
        rows = await self._pool.fetch(
            "SELECT name, version, sha256, published_by, published_at, "
            "version = max(version) OVER (PARTITION BY name) AS current "
            "FROM clinic_policies ORDER BY name, version"
        )
        return [PublishedVersion.model_validate(dict(row)) for row in rows]

    async def resolve(self, name: str, version: int | None) -> PublishedPolicy:
        """The policy a course opens on; refused with a code a clinician can act on."""
        check_name(name)
        found = await self.get(name, version)
        if found is not None:
            return found
        if version is not None and await self.get(name) is not None:
            raise PolicyRefused(
                "unknown_policy_version",
                f"Policy {name} has no version {version}; `course policy list` shows the versions published.",
            )
        raise PolicyRefused(
            "unknown_policy",
            f"No policy named {name} is published; a clinic admin publishes one with "
            f"`course policy publish FILE --name {name}`, or leave the name out for the clinic's policy.",
        )


def _published(row: asyncpg.Record) -> PublishedPolicy:
    # Read back tolerantly (a newer version's field is ignored), as any stored message is.
    return PublishedPolicy(
        name=row["name"],
        version=row["version"],
        sha256=row["sha256"],
        published_by=row["published_by"],
        published_at=row["published_at"],
        policy=CoursePolicy.model_validate_json(row["body"]),
    )
