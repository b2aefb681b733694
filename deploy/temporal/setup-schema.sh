#!/bin/sh
# One-shot Temporal schema setup / upgrade for PostgreSQL, run in the
# temporalio/admin-tools image before temporalio/server starts.
# Follows temporalio/samples-server compose/scripts/setup-postgres.sh.
#
# The databases themselves are created by deploy/postgres/init-roles.sh, owned by the
# Temporal role, which has no CREATEDB: temporal-sql-tool's `create` runs `CREATE DATABASE`
# and PostgreSQL refuses it for lack of privilege before noticing the database exists, so it is
# not called here. `setup-schema` and `update-schema` need only ownership of the database
# (the visibility schema's `CREATE EXTENSION btree_gin` is a trusted extension).
#
# Safe to re-run on every `docker compose up`:
#   - `setup-schema -v 0.0` skips when the schema version is already > 0.0,
#   - `update-schema` only applies versions newer than the recorded one,
#     which is also how the schema is upgraded after bumping the image tag.
set -eu

DB_PLUGIN="${DB:-postgres12}"
DB_HOST="${POSTGRES_SEEDS:-postgresql}"
DB_PORT="${DB_PORT:-5432}"
DB_USER="${POSTGRES_USER:?POSTGRES_USER names the Temporal database role}"
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
SCHEMA_ROOT="${SCHEMA_ROOT:-/etc/temporal/schema/postgresql/v12}"
# temporal-sql-tool reads the password from SQL_PASSWORD (keeps it off argv).
SQL_PASSWORD="${SQL_PASSWORD:-${POSTGRES_PWD:?set TEMPORAL_DB_PASSWORD}}"
export SQL_PASSWORD

echo "Waiting for PostgreSQL at ${DB_HOST}:${DB_PORT}..."
attempt=0
until nc -z -w 5 "$DB_HOST" "$DB_PORT"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "PostgreSQL not reachable after ${attempt} attempts" >&2
    exit 1
  fi
  sleep 2
done

sql_tool() {
  temporal-sql-tool --plugin "$DB_PLUGIN" --ep "$DB_HOST" -p "$DB_PORT" -u "$DB_USER" "$@"
}

setup_database() {
  db="$1"
  versioned_dir="$2"
  echo "Setting up database '${db}' from ${versioned_dir}"
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$versioned_dir"
}

setup_database "$DBNAME" "${SCHEMA_ROOT}/temporal/versioned"
setup_database "$VISIBILITY_DBNAME" "${SCHEMA_ROOT}/visibility/versioned"

echo "Temporal PostgreSQL schema setup complete"
