-- The scheduled runs of the clinic (issue 20): each morning's huddle digest and each reconciliation,
-- by the id of the workflow that made it, with what it found. Codes, versions and opaque ids only:
-- the console's "today" page and `course reconcile --last` read them.
CREATE TABLE IF NOT EXISTS clinic_runs (
    -- The scheduled workflow's id and its run, e.g. clinic-reconcile-2026-12-02T08:00:00Z@<run id> (two
    -- triggers in one second share the id).
    run_id      text PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('daily_huddle', 'reconcile')),
    made_at     timestamptz NOT NULL,
    -- The huddle's digest (course/huddle.py HuddleDigest); for a reconciliation, its counts.
    body        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS clinic_runs_latest ON clinic_runs (kind, made_at DESC);

CREATE TABLE IF NOT EXISTS reconcile_findings (
    run_id    text NOT NULL REFERENCES clinic_runs (run_id) ON DELETE CASCADE,
    -- The course's stream id, or a notification's idempotency key for a notification finding.
    subject   text NOT NULL,
    stream_id text NOT NULL,
    code      text NOT NULL CHECK (code ~ '^[a-z_]{1,64}$'),
    detail    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, subject, code)
);
CREATE INDEX IF NOT EXISTS reconcile_findings_stream ON reconcile_findings (stream_id);
