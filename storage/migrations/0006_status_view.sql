-- Raw machine status reports for the machine-health panels (clock offset and frame
-- counters over time, one machine). Machine-level: also readable by operations.

CREATE VIEW sledfleet.v_machine_status AS
SELECT ts, machine_id, clinic_id, status, agent_version, firmware, rate_hz, config_version,
       clock_offset_ms, frames, frames_replayed, frames_duplicate, frames_missing,
       edge_dropped, last_seq
FROM sledfleet.machine_status;

CREATE VIEW clinic.v_machine_status WITH (security_barrier) AS
SELECT * FROM sledfleet.v_machine_status
WHERE clinic_id IN (SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = current_user);

CREATE VIEW ops.v_machine_status AS SELECT * FROM sledfleet.v_machine_status;

-- The dead-letter record's own time, kept exactly (it is part of the record's identity).
ALTER TABLE sledfleet.dead_letters ADD COLUMN received_at_ns bigint;
