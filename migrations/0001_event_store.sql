-- The event store: one row per clinical fact, appended exactly once.
CREATE TABLE IF NOT EXISTS events (
    global_position bigserial PRIMARY KEY,
    stream_id       text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);

-- Inline projection, written in the append's transaction; rebuildable from events.
CREATE TABLE IF NOT EXISTS course_summaries (
    stream_id             text PRIMARY KEY,
    course_id             uuid        NOT NULL UNIQUE,
    patient_id            text        NOT NULL,
    phase                 text        NOT NULL,
    outcome               text,
    clinician_id          text        NOT NULL,
    therapist_id          text,
    insurance             text,
    sessions_completed    integer     NOT NULL,
    sessions_planned      integer,
    gad7_baseline         integer,
    gad7_latest           integer,
    on_hold               boolean     NOT NULL,
    needs_clinical_review boolean     NOT NULL,
    overdue               boolean     NOT NULL,
    version               integer     NOT NULL,
    global_position       bigint      NOT NULL,
    opened_at             timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    state                 jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS course_summaries_phase ON course_summaries (phase);
CREATE INDEX IF NOT EXISTS course_summaries_clinician ON course_summaries (clinician_id);

-- Outbox: a reminder is delivered once per key, however often the activity is retried.
CREATE TABLE IF NOT EXISTS notifications (
    idempotency_key text PRIMARY KEY,
    stream_id       text        NOT NULL,
    purpose         text        NOT NULL,
    recipient       text        NOT NULL,
    recipient_id    text,
    due_at          timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    channel         text
);
CREATE INDEX IF NOT EXISTS notifications_undelivered ON notifications (created_at)
    WHERE delivered_at IS NULL;
