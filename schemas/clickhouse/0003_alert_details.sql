-- The rest of the alert JSON (CONTRACT.md section 6) in the alerts table,
-- so dashboards need no NATS: FIWARE category, the rule's labels (a JSON
-- object), and an operator's acknowledgement. Runs on 18.16 and 24.x.
ALTER TABLE alerts
    ADD COLUMN category String,
    ADD COLUMN sub_category String,
    ADD COLUMN labels String,
    ADD COLUMN op String,
    ADD COLUMN agg String,
    ADD COLUMN rule_window String,
    ADD COLUMN acknowledged_by String,
    ADD COLUMN acknowledged_at Nullable(DateTime('UTC')),
    ADD COLUMN ack_comment String;
