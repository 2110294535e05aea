-- Issue #13 (M3): free text stays out of the operations role's views. A fault's detail is
-- written by a device or a technician and may name a person; session ids link to patients.
-- ops.v_machine_events keeps its columns (dashboards query it) with both always NULL.
-- Clinic roles still read them through clinic.v_machine_events (their own clinic only).

CREATE OR REPLACE VIEW ops.v_machine_events AS
SELECT ts, event_id, machine_id, clinic_id, type, code, NULL::text AS detail,
       NULL::text AS session_id, seq
FROM sledfleet.v_machine_events;
