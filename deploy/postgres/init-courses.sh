#!/bin/sh
# Runs once, on the FIRST start of an empty PostgreSQL data volume
# (postgres image /docker-entrypoint-initdb.d convention).
# Creates the application's event-store database and its owner role.
# Temporal's own databases (temporal, temporal_visibility) are created by
# the temporal-schema job with temporal-sql-tool, not here.
#
# Note: the postgres entrypoint *sources* non-executable .sh files, so this
# script avoids `set -u` and `exit` to not disturb the entrypoint's shell.
set -e

COURSE_DB_USER="${COURSE_DB_USER:-course}"
COURSE_DB_NAME="${COURSE_DB_NAME:-courses}"
COURSE_DB_PASSWORD="${COURSE_DB_PASSWORD:-course}"

psql -v ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v course_user="$COURSE_DB_USER" \
  -v course_db="$COURSE_DB_NAME" \
  -v course_password="$COURSE_DB_PASSWORD" <<'EOSQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'course_user', :'course_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'course_user')\gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'course_db', :'course_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'course_db')\gexec

SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'course_db')\gexec
EOSQL
