-- Console sign-ins (api/sessions.py). Signing in with a staff token opens a session: a random id
-- (256 bits) goes into the browser's cookie and only its sha256 is kept here, so a copy of this
-- table (a backup, a reporting replica) opens no one's session. `token_sha256` is the hash of the
-- staff token that opened it (the same value as `staff.token_sha256`): the session lives only as
-- long as that token does. A session ends at sign-out (every session of the member), when the
-- member's token is revoked or replaced, after the idle window without a request, or at the
-- absolute limit; an ended row stays, as the record of who was signed in and when.
CREATE TABLE IF NOT EXISTS console_sessions (
    session_sha256 bytea       PRIMARY KEY CHECK (length(session_sha256) = 32),
    staff_id       text        NOT NULL CHECK (staff_id ~ '^[A-Za-z0-9._:@-]{1,64}$'),
    role           text        NOT NULL CHECK (role IN ('prescriber', 'nurse', 'therapist', 'operations')),
    token_sha256   bytea       NOT NULL CHECK (length(token_sha256) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    ended_reason   text CHECK (ended_reason IN ('signed_out', 'idle', 'expired', 'token_revoked', 'token_replaced')),
    CHECK ((ended_at IS NULL) = (ended_reason IS NULL))
);

CREATE INDEX IF NOT EXISTS console_sessions_open_by_member ON console_sessions (staff_id) WHERE ended_at IS NULL;
