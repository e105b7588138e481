-- Operators' actions (CONTRACT.md section 8). Runs on 18.16 and 24.x+.
--
-- The alerts table gains the rest of the alert JSON: assignee, the count
-- of comments, the silences that matched the transition when it was
-- decided, and which action (if any) the transition records.
ALTER TABLE alerts
    ADD COLUMN assignee String,
    ADD COLUMN assigned_by String,
    ADD COLUMN assigned_at Nullable(DateTime('UTC')),
    ADD COLUMN comments UInt32,
    ADD COLUMN silenced_by Array(String),
    ADD COLUMN action String;

-- The audit trail: one row per action, never updated or deleted by iocd.
-- An alert action's row is written with its transition (and again from
-- IOC_ALERTS if the process died before): the key makes a retried row the
-- same row under FINAL, and no two actions share a key (an action is a
-- transition of its own seq; a silence has one create and one expire).
CREATE TABLE IF NOT EXISTS alert_actions (
    at DateTime('UTC'),
    at_ms UInt16,
    fingerprint String,
    alert_id String,
    seq UInt32,
    action String,
    actor String,
    role String,
    comment String,
    details String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (fingerprint, alert_id, seq, action)
SETTINGS index_granularity = 8192;
