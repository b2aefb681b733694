-- The outcome projection (application/outcomes.py): one row per course, its CourseOutcome
-- (course/outcomes.py) as folded from its events, and the position it is folded up to. No patient
-- reference: a row names its course by its stream only, and reports never show that.
-- Rebuildable from zero (`course rebuild-outcomes`): the events are the record, this is a view of them.
CREATE TABLE IF NOT EXISTS course_outcomes (
    stream_id       text        PRIMARY KEY,
    version         integer     NOT NULL CHECK (version >= 1),
    global_position bigint      NOT NULL,
    opened_at       timestamptz NOT NULL,
    outcome         jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS course_outcomes_opened ON course_outcomes (opened_at);

-- How far each projection has read `events`, by global_position: it resumes after it.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name            text        PRIMARY KEY,
    global_position bigint      NOT NULL CHECK (global_position >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoints (name, global_position) VALUES ('course_outcomes', 0)
ON CONFLICT (name) DO NOTHING;

-- A report's read is recorded like any other read, but it reads the clinic's aggregates, not one
-- course: its row names no course. Only report reads may leave course_id empty.
ALTER TABLE access_log ALTER COLUMN course_id DROP NOT NULL;
ALTER TABLE access_log DROP CONSTRAINT IF EXISTS access_log_course_or_report;
ALTER TABLE access_log ADD CONSTRAINT access_log_course_or_report
    CHECK (course_id IS NOT NULL OR what LIKE 'report\_%');
