-- Notifications as real deliveries: a claim per attempt, an honest status, and the directory
-- the activity reads addresses from at delivery time (never from workflow payloads).

-- pending → sending (one attempt holds the claim) → delivered
--                                                 → failed (nothing sent; a retry may claim it)
--                                                 → undeliverable (no address, refused for good)
--                                                 → delivery_uncertain (the attempt died mid-send:
--                                                   never resent; operations check and follow up)
ALTER TABLE notifications
    ADD COLUMN IF NOT EXISTS status     text        NOT NULL DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS attempts   integer     NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS claim_id   text,
    ADD COLUMN IF NOT EXISTS claimed_at timestamptz,
    ADD COLUMN IF NOT EXISTS message_id text,
    -- A machine code (`smtp_rcpt_550`, `no_address`, `attempt_lost`), never an address or text.
    ADD COLUMN IF NOT EXISTS last_error text,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

UPDATE notifications SET status = 'delivered' WHERE delivered_at IS NOT NULL AND status = 'pending';

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (
    status IN ('pending', 'sending', 'delivered', 'failed', 'undeliverable', 'delivery_uncertain')
);

CREATE INDEX IF NOT EXISTS notifications_stream ON notifications (stream_id, due_at);
-- What operations look at: anything that did not plainly arrive.
CREATE INDEX IF NOT EXISTS notifications_attention ON notifications (updated_at)
    WHERE status IN ('sending', 'failed', 'undeliverable', 'delivery_uncertain');

-- The clinic's directory, keyed by the pseudonymous patient id the course carries. Filled by the
-- clinic's patient-administration system; read by the notification activity only.
CREATE TABLE IF NOT EXISTS patient_contacts (
    patient_id   text PRIMARY KEY,
    email        text,
    phone        text,
    display_name text,
    time_zone    text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Clinicians, therapists, and the `operations` team mailbox, by staff id.
CREATE TABLE IF NOT EXISTS staff_contacts (
    staff_id     text PRIMARY KEY,
    email        text,
    phone        text,
    display_name text,
    time_zone    text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
