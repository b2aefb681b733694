"""deploy/postgres/init-roles.sh, run as the postgres image would run it, against a real server.

The compose stack's first start cannot be run here (no Docker engine), so the script runs against
the local PostgreSQL at 127.0.0.1:5432 as its superuser, creating roles and databases under unique
names, and then each role tries what it must and must not be able to do. Everything is dropped
afterwards. The local server trusts local connections, so a refused connection below is refused by
privileges (CONNECT), not by a password.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from worker.database import migrate

ROOT = Path(__file__).resolve().parents[1]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-roles.sh"
HOST, PORT, SUPERUSER = "127.0.0.1", 5432, "postgres"


def _local_postgres_up() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    shutil.which("psql") is None or not _local_postgres_up(),
    reason="needs psql and a PostgreSQL at 127.0.0.1:5432 that trusts local connections",
)


@dataclass(frozen=True)
class Deployment:
    temporal_user: str
    temporal_db: str
    visibility_db: str
    course_user: str
    course_db: str

    def script_env(self) -> dict[str, str]:
        """What the compose file hands the postgres container, plus where the server is."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "PGHOST": HOST,
            "PGPORT": str(PORT),
            "POSTGRES_USER": SUPERUSER,
            "POSTGRES_DB": "postgres",
            "TEMPORAL_DB_USER": self.temporal_user,
            "TEMPORAL_DB_NAME": self.temporal_db,
            "TEMPORAL_VISIBILITY_DB_NAME": self.visibility_db,
            "TEMPORAL_DB_PASSWORD": secrets.token_hex(16),
            "COURSE_DB_USER": self.course_user,
            "COURSE_DB_NAME": self.course_db,
            "COURSE_DB_PASSWORD": secrets.token_hex(16),
        }


def run_init_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def psql(user: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", HOST, "-p", str(PORT), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )


def as_superuser(sql: str) -> str:
    result = psql(SUPERUSER, "postgres", sql)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def may_connect(role: str, database: str) -> bool:
    return as_superuser(f"SELECT has_database_privilege('{role}', '{database}', 'CONNECT')") == "t"


def _drop(deployment: Deployment) -> None:
    for db in (deployment.temporal_db, deployment.visibility_db, deployment.course_db):
        psql(SUPERUSER, "postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    for role in (deployment.temporal_user, deployment.course_user):
        psql(SUPERUSER, "postgres", f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    suffix = secrets.token_hex(4)
    created = Deployment(
        temporal_user=f"temporal_t{suffix}",
        temporal_db=f"temporal_t{suffix}",
        visibility_db=f"temporal_visibility_t{suffix}",
        course_user=f"course_t{suffix}",
        course_db=f"courses_t{suffix}",
    )
    try:
        result = run_init_script(created.script_env())
        assert result.returncode == 0, result.stdout + result.stderr
        yield created
    finally:
        _drop(created)


def test_neither_service_role_is_a_superuser_or_can_create_databases(deployment: Deployment) -> None:
    rows = as_superuser(
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin "
        f"FROM pg_roles WHERE rolname IN ('{deployment.temporal_user}', '{deployment.course_user}') ORDER BY 1"
    )
    assert rows.splitlines() == [
        f"{deployment.course_user}|f|f|f|f|f|t",
        f"{deployment.temporal_user}|f|f|f|f|f|t",
    ]


def test_each_database_belongs_to_its_service_and_public_has_no_access(deployment: Deployment) -> None:
    owners = as_superuser(
        "SELECT datname, pg_get_userbyid(datdba), has_database_privilege('public', oid, 'CONNECT') "
        f"FROM pg_database WHERE datname IN ('{deployment.temporal_db}', '{deployment.visibility_db}', "
        f"'{deployment.course_db}') ORDER BY 1"
    )
    assert sorted(owners.splitlines()) == sorted(
        [
            f"{deployment.course_db}|{deployment.course_user}|f",
            f"{deployment.temporal_db}|{deployment.temporal_user}|f",
            f"{deployment.visibility_db}|{deployment.temporal_user}|f",
        ]
    )


def test_temporal_cannot_read_the_clinical_record(deployment: Deployment) -> None:
    """Given Temporal's credentials, the courses database does not even open."""
    assert not may_connect(deployment.temporal_user, deployment.course_db)
    attempt = psql(deployment.temporal_user, deployment.course_db, "SELECT 1")
    assert attempt.returncode != 0
    assert "permission denied for database" in attempt.stderr


def test_the_service_cannot_open_temporals_databases(deployment: Deployment) -> None:
    for db in (deployment.temporal_db, deployment.visibility_db):
        attempt = psql(deployment.course_user, db, "SELECT 1")
        assert attempt.returncode != 0
        assert "permission denied for database" in attempt.stderr


def test_temporal_sets_up_its_schema_but_cannot_create_a_database(deployment: Deployment) -> None:
    """What temporal-sql-tool's setup-schema / update-schema do, as the Temporal role: tables in its
    databases and the visibility schema's btree_gin extension. `create` would fail, hence skipped."""
    visibility = psql(
        deployment.temporal_user,
        deployment.visibility_db,
        "CREATE EXTENSION IF NOT EXISTS btree_gin; CREATE TABLE schema_version (db_name varchar(255) PRIMARY KEY)",
    )
    assert visibility.returncode == 0, visibility.stderr
    history = psql(deployment.temporal_user, deployment.temporal_db, "CREATE TABLE shards (shard_id int PRIMARY KEY)")
    assert history.returncode == 0, history.stderr
    create = psql(deployment.temporal_user, deployment.temporal_db, f'CREATE DATABASE "{deployment.temporal_db}_x"')
    assert create.returncode != 0
    assert "permission denied to create database" in create.stderr


async def test_the_service_migrates_its_own_database_and_owns_every_table(deployment: Deployment) -> None:
    dsn = f"postgresql://{deployment.course_user}@{HOST}:{PORT}/{deployment.course_db}"
    applied = await migrate(dsn)
    assert applied, "no migration ran"
    connection = await asyncpg.connect(dsn)
    try:
        owners = {
            row["tableowner"]
            for row in await connection.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await connection.close()
    assert owners == {deployment.course_user}


async def test_the_service_can_add_to_the_access_log_and_never_change_or_empty_it(deployment: Deployment) -> None:
    """As the service's own role (the table's owner, not a superuser): reads are appended, and an
    UPDATE, DELETE or TRUNCATE is refused, by the revoked privilege and by the trigger behind it."""
    dsn = f"postgresql://{deployment.course_user}@{HOST}:{PORT}/{deployment.course_db}"
    await migrate(dsn)
    connection = await asyncpg.connect(dsn)
    course = "3f1e9c2a-0000-4000-8000-00000000a11d"
    try:
        await connection.execute(
            "INSERT INTO access_log (staff_id, role, course_id, what, channel) "
            "VALUES ('dr-ames', 'prescriber', $1, 'view', 'api')",
            course,
        )
        for statement in (
            "UPDATE access_log SET staff_id = 'someone-else'",
            "DELETE FROM access_log",
            "TRUNCATE access_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
        # Taking the privilege back by hand still meets the trigger.
        await connection.execute(f'GRANT UPDATE, DELETE ON access_log TO "{deployment.course_user}"')
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute("DELETE FROM access_log")
        assert await connection.fetchval("SELECT count(*) FROM access_log WHERE course_id = $1", course) == 1
    finally:
        await connection.close()


def test_running_it_again_takes_back_a_privilege_granted_by_hand(deployment: Deployment) -> None:
    as_superuser(f'ALTER ROLE "{deployment.temporal_user}" CREATEDB')
    as_superuser(f'GRANT CONNECT ON DATABASE "{deployment.course_db}" TO PUBLIC')
    result = run_init_script(deployment.script_env())
    assert result.returncode == 0, result.stderr
    assert as_superuser(f"SELECT rolcreatedb FROM pg_roles WHERE rolname = '{deployment.temporal_user}'") == "f"
    assert not may_connect(deployment.temporal_user, deployment.course_db)


def test_without_a_password_nothing_is_created() -> None:
    suffix = secrets.token_hex(4)
    unstarted = Deployment(
        temporal_user=f"temporal_t{suffix}",
        temporal_db=f"temporal_t{suffix}",
        visibility_db=f"temporal_visibility_t{suffix}",
        course_user=f"course_t{suffix}",
        course_db=f"courses_t{suffix}",
    )
    try:
        for missing in ("TEMPORAL_DB_PASSWORD", "COURSE_DB_PASSWORD"):
            env = unstarted.script_env()
            env[missing] = ""
            result = run_init_script(env)
            assert result.returncode != 0
            assert missing in result.stderr
        assert as_superuser(f"SELECT count(*) FROM pg_roles WHERE rolname LIKE '%\\_t{suffix}'") == "0"
        assert as_superuser(f"SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_t{suffix}'") == "0"
    finally:
        _drop(unstarted)
