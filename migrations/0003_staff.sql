-- Staff who use the HTTP API and the clinician console: who they are, their role, and the sha256
-- of their bearer token. The token itself is shown once by `course staff add` and never stored, so
-- a copy of this table (a backup, a reporting replica) cannot be used to act as anyone.
CREATE TABLE IF NOT EXISTS staff (
    staff_id     text PRIMARY KEY CHECK (staff_id ~ '^[A-Za-z0-9._:@-]{1,64}$'),
    role         text        NOT NULL CHECK (role IN ('prescriber', 'nurse', 'therapist', 'operations')),
    token_sha256 bytea       NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
