-- Clinic policies live on the server: named, versioned, append-only. A course opens on one version
-- (the clinic's current one unless it names another) and records its name, version and sha256, so
-- no caller can hand a course a threshold, a consent form or a day of their own. This table is also
-- the audit of publication: who published which version of which policy, and when.
CREATE TABLE IF NOT EXISTS clinic_policies (
    name         text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    version      integer     NOT NULL CHECK (version >= 1),
    -- The canonical JSON (course/publication.py: every field, keys sorted, ASCII), as text: jsonb
    -- would reorder it, and the hash is over these exact bytes.
    body         text        NOT NULL CHECK (jsonb_typeof(body::jsonb) = 'object'),
    sha256       text        NOT NULL CHECK (sha256 = encode(sha256(convert_to(body, 'UTF8')), 'hex')),
    published_by text        NOT NULL CHECK (published_by ~ '^[A-Za-z0-9._:@-]{1,64}$'),
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Versions of a name count 1, 2, 3 with no gap, so "the current version" is the highest and a
-- missing one means a row was removed (which the trigger below refuses).
CREATE OR REPLACE FUNCTION clinic_policies_next_version() RETURNS trigger AS $$
BEGIN
    IF NEW.version <> COALESCE((SELECT max(version) FROM clinic_policies WHERE name = NEW.name), 0) + 1 THEN
        RAISE EXCEPTION 'policy % version % does not follow the latest published version', NEW.name, NEW.version
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION clinic_policies_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'clinic_policies is append-only: publish a new version instead'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS clinic_policies_next_version ON clinic_policies;
CREATE TRIGGER clinic_policies_next_version BEFORE INSERT ON clinic_policies
    FOR EACH ROW EXECUTE FUNCTION clinic_policies_next_version();
DROP TRIGGER IF EXISTS clinic_policies_no_change ON clinic_policies;
CREATE TRIGGER clinic_policies_no_change BEFORE UPDATE OR DELETE ON clinic_policies
    FOR EACH ROW EXECUTE FUNCTION clinic_policies_append_only();
DROP TRIGGER IF EXISTS clinic_policies_no_truncate ON clinic_policies;
CREATE TRIGGER clinic_policies_no_truncate BEFORE TRUNCATE ON clinic_policies
    FOR EACH STATEMENT EXECUTE FUNCTION clinic_policies_append_only();

-- Version 1 of `default` is the built-in CoursePolicy as of this migration, published here so that
-- a clinic that has published nothing still opens courses on a stored, hashed version; a change to
-- the code's defaults later does not change it (a clinic admin publishes version 2).
INSERT INTO clinic_policies (name, version, body, sha256, published_by)
SELECT 'default', 1, body, encode(sha256(convert_to(body, 'UTF8')), 'hex'), 'migration'
FROM (VALUES (
    '{"assessment_deadline":"P30D","assessment_reminder_after":"P7D","bp_threshold":{"diastolic":100,"systolic":160},'
    '"clearance_reminder_after":"P3D","command_window":"PT5M","consent_form_version":"2026-01","day_length":"P1D",'
    '"gad7_review_threshold":10,"integration_due_within":"P7D","integration_gap_reminder":"P14D",'
    '"integration_reminder_after":"P3D","maintenance_grace":"P30D","maintenance_interval_days":{"max":365,"min":30},'
    '"maintenance_reminder_lead":"P14D","max_planned_sessions":12,"preparation_deadline":"P60D",'
    '"preparation_reminder_after":"P14D","session_reminder_lead":"P1D"}'
)) AS built_in (body)
WHERE NOT EXISTS (SELECT 1 FROM clinic_policies WHERE name = 'default');

-- The clinic admin publishes policies; migrations/0003_staff.sql knew four roles.
ALTER TABLE staff DROP CONSTRAINT IF EXISTS staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check
    CHECK (role IN ('prescriber', 'nurse', 'therapist', 'operations', 'clinic_admin'));
