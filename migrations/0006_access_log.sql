-- Every read of a course's data through the API, the console or the CLI: who, in which role, which
-- course, what (a code: view, events, timeline, operations, notifications, list, audit), when,
-- through which channel, and the break-the-glass reason when one was needed. Codes and opaque ids
-- only, never patient data: the table is kept for as long as the clinical record.
CREATE TABLE IF NOT EXISTS access_log (
    id          bigserial PRIMARY KEY,
    read_at     timestamptz NOT NULL DEFAULT now(),
    staff_id    text        NOT NULL CHECK (staff_id ~ '^[A-Za-z0-9._:@-]{1,64}$'),
    role        text        NOT NULL CHECK (role IN ('prescriber', 'nurse', 'therapist', 'operations')),
    course_id   uuid        NOT NULL,
    what        text        NOT NULL CHECK (what ~ '^[a-z_]{1,32}$'),
    channel     text        NOT NULL CHECK (channel IN ('api', 'console', 'cli')),
    break_glass text        CHECK (break_glass IN ('emergency', 'covering_colleague', 'patient_request'))
);
CREATE INDEX IF NOT EXISTS access_log_course ON access_log (course_id, read_at);

-- Append-only: a record of who read a course is worth nothing if the reader's own service can
-- rewrite it. The service's role (which owns the table) gets an error on UPDATE, DELETE and TRUNCATE.
CREATE OR REPLACE FUNCTION access_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

DROP TRIGGER IF EXISTS access_log_no_update_or_delete ON access_log;
CREATE TRIGGER access_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();

DROP TRIGGER IF EXISTS access_log_no_truncate ON access_log;
CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();

-- And the privileges themselves, from everyone including the owner: taking them back is DDL, on purpose.
REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM PUBLIC, CURRENT_USER;
