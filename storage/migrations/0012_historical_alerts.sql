-- Alerts about the past: a machine replaying yesterday's outbox raises yesterday's
-- alerts now. The stream marks an alert `historical` when what it speaks of is older than
-- SLEDFLEET_STREAM_HISTORICAL_ALERT_AGE_S at the moment it is raised; such an alert is
-- recorded (and shown in the alert history) but never counts as open, new news.
ALTER TABLE sledfleet.alerts ADD COLUMN IF NOT EXISTS historical boolean NOT NULL DEFAULT false;

CREATE OR REPLACE VIEW sledfleet.v_alerts AS
SELECT ts, window_start, rule, subject_id, clinic_id, patient_id, machine_id, severity, value,
       threshold, message, acknowledged_at,
       (acknowledged_at IS NULL AND NOT historical AND ts > now() - INTERVAL '14 days') AS is_open
FROM sledfleet.alerts;

CREATE OR REPLACE VIEW sledfleet.v_alerts_open AS
SELECT ts, window_start, rule, subject_id, clinic_id, patient_id, machine_id, severity, value,
       threshold, message
FROM sledfleet.alerts
WHERE acknowledged_at IS NULL AND NOT historical AND ts > now() - INTERVAL '14 days';
