-- Tokens configured in `API_TOKENS` (a secret store, read at start) that `course staff revoke` has
-- revoked: by their sha256, so a revocation holds at once, in every API process, before anyone
-- edits the secret. Only hashes and staff ids; kept, like the staff table, for the audit.
CREATE TABLE IF NOT EXISTS revoked_tokens (
    token_sha256 bytea       PRIMARY KEY CHECK (length(token_sha256) = 32),
    staff_id     text        NOT NULL CHECK (staff_id ~ '^[A-Za-z0-9._:@-]{1,64}$'),
    revoked_at   timestamptz NOT NULL DEFAULT now()
);
