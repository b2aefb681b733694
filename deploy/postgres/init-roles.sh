#!/bin/sh
# Runs once, on the FIRST start of an empty PostgreSQL data volume (postgres image,
# /docker-entrypoint-initdb.d), as the image's bootstrap superuser. Nothing else in the stack
# connects as that superuser: each service gets a role that can reach only its own data.
#
#   TEMPORAL_DB_USER  owns temporal + temporal_visibility. Not a superuser and NOCREATEDB: the
#                     databases are created here, so deploy/temporal/setup-schema.sh skips
#                     temporal-sql-tool's `create`. It cannot connect to the courses database,
#                     so a compromised Temporal (or its credentials) does not read the record.
#   COURSE_DB_USER    owns the courses database and, through it, its public schema
#                     (pg_database_owner, PostgreSQL 15+). It cannot connect to Temporal's
#                     databases.
#   PUBLIC            loses CONNECT (and TEMP) on all three databases; the owner keeps them.
#
# The passwords have no default: a missing one stops the first start instead of leaving a
# guessable password on a database of patient records.
#
# Note: the postgres entrypoint *sources* non-executable .sh files, so this script avoids
# `set -u` and `exit` to not disturb the entrypoint's shell (a failed `:?` check still stops it).
set -e

: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD (see .env.example)}"
: "${COURSE_DB_PASSWORD:?set COURSE_DB_PASSWORD (see .env.example)}"
TEMPORAL_DB_USER="${TEMPORAL_DB_USER:-temporal}"
TEMPORAL_DB_NAME="${TEMPORAL_DB_NAME:-temporal}"
TEMPORAL_VISIBILITY_DB_NAME="${TEMPORAL_VISIBILITY_DB_NAME:-temporal_visibility}"
COURSE_DB_USER="${COURSE_DB_USER:-course}"
COURSE_DB_NAME="${COURSE_DB_NAME:-courses}"

psql -v ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v temporal_user="$TEMPORAL_DB_USER" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" \
  -v temporal_db="$TEMPORAL_DB_NAME" \
  -v visibility_db="$TEMPORAL_VISIBILITY_DB_NAME" \
  -v course_user="$COURSE_DB_USER" \
  -v course_password="$COURSE_DB_PASSWORD" \
  -v course_db="$COURSE_DB_NAME" <<'EOSQL'
-- Create the role when missing, then state every attribute: running this again (or by hand on
-- an older volume) also takes away a privilege the role should not have.
SELECT format('CREATE ROLE %I LOGIN', role)
FROM unnest(ARRAY[:'temporal_user', :'course_user']) AS role
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role)\gexec

SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS '
              'PASSWORD %L', role, password)
FROM (VALUES (:'temporal_user', :'temporal_password'), (:'course_user', :'course_password'))
  AS roles(role, password)\gexec

SELECT format('CREATE DATABASE %I OWNER %I', db, owner)
FROM (VALUES (:'temporal_db', :'temporal_user'), (:'visibility_db', :'temporal_user'),
             (:'course_db', :'course_user')) AS dbs(db, owner)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db)\gexec

SELECT format('ALTER DATABASE %I OWNER TO %I', db, owner)
FROM (VALUES (:'temporal_db', :'temporal_user'), (:'visibility_db', :'temporal_user'),
             (:'course_db', :'course_user')) AS dbs(db, owner)\gexec

-- The owner keeps its privileges; everyone else (the other service's role included) loses
-- CONNECT and TEMP, which PostgreSQL grants to PUBLIC on every new database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db)
FROM unnest(ARRAY[:'temporal_db', :'visibility_db', :'course_db']) AS db\gexec
EOSQL
